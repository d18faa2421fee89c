import DibsCore
import Testing

@Suite struct DomainTests {
    let now = Timestamp(milliseconds: 1_800_000_000_000)

    @Test func dropConfigDefaults() throws {
        let config = try DropConfig(id: DropID("spring-sneakers"), units: 100, opensAt: now)
        #expect(config.holdTTL == .seconds(120))
        #expect(config.perUserLimit == 1)
        #expect(config.waitlistCapacity == 100)
        #expect(config.mode == .firstCome)
        #expect(config.window(at: now) == nil)
        #expect(config.window(at: Timestamp(milliseconds: now.milliseconds - 1)) == .notOpen)
    }

    @Test func dropConfigBounds() throws {
        let id = try DropID("d")
        #expect(throws: DibsError.self) { try DropConfig(id: id, units: 1, holdTTL: .seconds(3601), opensAt: now) }
        #expect(throws: DibsError.self) { try DropConfig(id: id, units: 1, waitlistCapacity: -1, opensAt: now) }
        #expect(throws: DibsError.self) { try DropConfig(id: id, units: 1, opensAt: now, closesAt: now) }
        let widest = try DropConfig(id: id, units: 1_000_000, holdTTL: .seconds(3600), opensAt: now)
        #expect(widest.units == 1_000_000)
        let closing = try DropConfig(id: id, units: 1, opensAt: now, closesAt: now.adding(.seconds(10)))
        #expect(closing.window(at: now.adding(.seconds(10))) == .closed)
    }

    @Test func claimIDRoundTrips() throws {
        let id = ClaimID(drop: try DropID("a-b-1"), number: 42)
        #expect(id.description == "a-b-1.42")
        #expect(try ClaimID("a-b-1.42") == id)
        for bad in ["", "a-b", "a.0", ".4", "A.4", "a.-1"] {
            #expect(throws: DibsError.self) { try ClaimID(bad) }
        }
    }

    @Test func errorCodesAreStable() {
        #expect(DibsError.Code.staleFence.name == "stale-fence")
        #expect(DibsError(.leaseExpired, "late").description == "lease-expired: late")
    }

    @Test func waitlistCapacityZeroMeansSoldOutWhenAllHeld() async throws {
        let clock = ManualClock()
        let store = MemoryLeaseStore(clock: clock)
        let drop = try DropID("no-line")
        try await store.createDrop(DropConfig(id: drop, units: 1, waitlistCapacity: 0, opensAt: clock.now()))
        _ = try await store.claim(ClaimRequest(drop: drop, user: UserID("a"), idempotencyKey: IdempotencyKey("a")))
        let second = try await store.claim(
            ClaimRequest(drop: drop, user: UserID("b"), idempotencyKey: IdempotencyKey("b")))
        #expect(second.decision == .rejected(.soldOut))
    }

    @Test func millionUnitDropIsCheap() async throws {
        let clock = ManualClock()
        let store = MemoryLeaseStore(clock: clock)
        let drop = try DropID("million")
        try await store.createDrop(DropConfig(id: drop, units: 1_000_000, opensAt: clock.now()))
        let outcome = try await store.claim(
            ClaimRequest(drop: drop, user: UserID("a"), idempotencyKey: IdempotencyKey("a")))
        #expect(outcome.decision == .held(unit: 0, fence: Fence(1), expiresAt: clock.now().adding(.seconds(120))))
        let snapshot = try await store.inspect(drop: drop)
        #expect(snapshot.free == 999_999)
    }
}
