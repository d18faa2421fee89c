public import DibsCore

/// A wave of holds that all run out after they were taken: how a server store settles them,
/// a batch per call except where an answer depends on the rest (`RedisSettleTests`,
/// `PostgresSettleTests`). The memory store settles everything at once, so it is not run.
public struct ExpiryWave: Sendable {
    /// How many leases that ran out a call settles before it answers (the scripts' batch).
    public static let batch = 64

    let store: any LeaseStore
    /// The units held of a drop, read straight from the store's data (the counts would
    /// settle a batch themselves).
    let held: @Sendable (DropID) async throws -> Int

    public init(store: any LeaseStore, held: @escaping @Sendable (DropID) async throws -> Int) {
        self.store = store
        self.held = held
    }

    /// A claim after the wave settles one batch and holds one of its units; reaping settles
    /// the rest.
    public func aClaimSettlesOneBatch() async throws {
        let drop = try await filled("wave-batch", units: 300)
        try await expect(held(drop.id) == 300, "the fill holds every unit")
        try await Task.sleep(for: Self.holdsRunOut)
        let late = try await claim(drop.id, user: "late", key: "late")
        guard case .held = late else { throw ConformanceFailure(description: "the late claim got \(late)") }
        let after = try await held(drop.id)
        try expect(after == 300 - Self.batch + 1, "\(after) held after one claim, not \(300 - Self.batch + 1)")
        _ = try await store.reapExpired(drop: drop.id)
        try await expect(held(drop.id) == 1, "reaping settles the rest")
    }

    /// 200 units held, 100 waitlisted; all 200 leases run out: 100 units go to the waitlist,
    /// 100 come free, so a new claim must get one, not a place in line.
    public func aUnitBehindAWaitlistLongerThanABatchIsFound() async throws {
        let drop = try await filled("wave-waitlist", units: 200, waitlisted: 100)
        try await Task.sleep(for: Self.holdsRunOut)
        let late = try await claim(drop.id, user: "late", key: "late")
        guard case .held = late else {
            throw ConformanceFailure(description: "a unit was free behind the waitlist, the claim got \(late)")
        }
        // Two batches: 100 units to the waitlist, 28 free, one of them now the late claim's.
        let after = try await held(drop.id)
        try expect(after == 200 - 28 + 1, "\(after) held, not \(200 - 28 + 1)")
    }

    /// A shopper at the limit whose own lease ran out behind a batch of others claims again.
    public func aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit() async throws {
        let drop = try await filled("wave-limit", units: 300, only: 200)
        _ = try await claim(drop.id, user: "pat", key: "pat-1")
        try await Task.sleep(for: Self.holdsRunOut)
        let again = try await claim(drop.id, user: "pat", key: "pat-2")
        guard case .held = again else {
            throw ConformanceFailure(description: "pat's lease ran out, yet the second claim got \(again)")
        }
    }

    /// The status of the last lease to run out, behind several batches, says it expired.
    public func statusOfTheLastLeaseSaysExpired() async throws {
        let drop = try await filled("wave-status", units: 300)
        try await Task.sleep(for: Self.holdsRunOut)
        let last = try await store.claim(
            ClaimRequest(drop: drop.id, user: try UserID("filler-299"), idempotencyKey: try IdempotencyKey("fill-299")))
        guard let claim = last.claim else { throw ConformanceFailure(description: "the replay names no claim") }
        let status = try await store.status(of: claim)
        try expect(status.state == .expired, "the last lease ran out, its status: \(status)")
    }

    /// Holds of 3 s: the units are claimed one after another well within that, so all the
    /// holds run out after the fill, in the order they were taken.
    static let holdsRunOut = Duration.milliseconds(3_300)

    /// A new drop of `units` with `only` of them claimed (all by default) and `waitlisted`
    /// claims in line, each by its own shopper.
    private func filled(_ name: String, units: Int, only: Int? = nil, waitlisted: Int = 0) async throws
        -> DropConfig
    {
        let drop = try DropConfig(
            id: DropID("\(name)-\(UInt32.random(in: 0...UInt32.max))"), units: units, holdTTL: .seconds(3),
            waitlistCapacity: waitlisted, opensAt: SystemClock().now().adding(.seconds(-1)))
        try await store.createDrop(drop)
        for index in 0..<((only ?? units) + waitlisted) {
            _ = try await claim(drop.id, user: "filler-\(index)", key: "fill-\(index)")
        }
        return drop
    }

    private func claim(_ drop: DropID, user: String, key: String) async throws -> ClaimOutcome.Decision {
        try await store.claim(
            ClaimRequest(drop: drop, user: try UserID(user), idempotencyKey: try IdempotencyKey(key))
        ).decision
    }
}
