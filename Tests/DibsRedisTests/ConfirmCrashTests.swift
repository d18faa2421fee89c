import DibsCore
import DibsPostgres
import LeaseStoreConformance
import Testing

@testable import DibsRedis

/// A confirm on Redis is three steps (begin in Redis, sale in Postgres, commit in Redis).
/// Each test stops a store at one crash point, as if its process died there, then looks at
/// what a fresh store and the ledger see.
@Suite("RedisLeaseStore confirm, crashed between its steps", .serialized)
struct ConfirmCrashTests {
    struct Held {
        let drop: DropID
        let request: ConfirmRequest
        let unit: Int
    }

    /// A one-unit drop with a 1 s hold, its unit held.
    static func holdOne(_ store: RedisLeaseStore) async throws -> Held {
        let config = try DropConfig(
            id: DropID("crash-\(UInt32.random(in: 0...UInt32.max))"), units: 1, holdTTL: .seconds(1),
            opensAt: SystemClock().now().adding(.seconds(-1)))
        try await store.createDrop(config)
        let outcome = try await store.claim(
            ClaimRequest(drop: config.id, user: UserID("buyer"), idempotencyKey: IdempotencyKey("buy")))
        guard case .held(let unit, let fence, _) = outcome.decision, let claim = outcome.claim,
            let token = outcome.holdToken
        else { throw SetupError(description: "the unit was not held: \(outcome.decision)") }
        return Held(
            drop: config.id, request: try ConfirmRequest(claim: claim, holdToken: token, fence: fence, orderRef: "o-1"),
            unit: unit)
    }

    /// Crashes a confirm at `point` with a 1 s grace, then waits until the stretched lease ran out.
    static func crashAndOutlive(_ point: RedisLeaseStore.CrashPoint) async throws -> Held {
        var configuration = RedisLeaseStore.Configuration()
        configuration.confirmGrace = .seconds(1)
        let held = try await TestServers.withStore(crashPoint: point, storeConfiguration: configuration) {
            crashing, _, _ in
            let held = try await Self.holdOne(crashing)
            await #expect(throws: SimulatedCrash.self) { try await crashing.confirm(held.request) }
            return held
        }
        try await Task.sleep(for: .milliseconds(1500))
        return held
    }

    @Test(arguments: [RedisLeaseStore.CrashPoint.afterConfirmBegin, .afterSaleRecorded, .afterConfirmCommit])
    func aRetryAfterTheCrashSellsTheUnitOnce(_ point: RedisLeaseStore.CrashPoint) async throws {
        let held = try await TestServers.withStore(crashPoint: point) { crashing, _, _ in
            let held = try await Self.holdOne(crashing)
            await #expect(throws: SimulatedCrash.self) { try await crashing.confirm(held.request) }
            return held
        }
        try await TestServers.withStore { store, _, ledger in
            let sale = try await store.confirm(held.request)
            #expect(sale.unit == held.unit && sale.fence == held.request.fence && sale.orderRef == "o-1")
            #expect(try await ledger.sale(drop: held.drop, unit: held.unit) == sale)
            #expect(try await store.status(of: held.request.claim).state == .confirmed)
            let snapshot = try await store.inspect(drop: held.drop)
            #expect(snapshot.sold == 1 && snapshot.held == 0 && snapshot.free == 0)
            #expect(try await store.confirm(held.request) == sale, "confirming again answers the same sale")
        }
    }

    @Test func crashAfterBeginWithoutRetryLeavesTheUnitInLimboUnsold() async throws {
        let held = try await Self.crashAndOutlive(.afterConfirmBegin)
        try await TestServers.withStore { store, _, ledger in
            #expect(try await ledger.sale(drop: held.drop, unit: held.unit) == nil, "no sale was recorded")
            let snapshot = try await store.inspect(drop: held.drop)
            #expect(snapshot.free == 0 && snapshot.held == 1, "the unit is in limbo, not back on sale: \(snapshot)")
            let other = try await store.claim(
                ClaimRequest(drop: held.drop, user: UserID("other"), idempotencyKey: IdempotencyKey("other")))
            if case .held = other.decision { Issue.record("a unit in limbo was leased again") }
            // The confirm began in time, so its retry finishes it.
            let sale = try await store.confirm(held.request)
            #expect(try await ledger.sale(drop: held.drop, unit: held.unit) == sale)
            #expect(try await store.inspect(drop: held.drop).sold == 1)
        }
    }

    @Test func crashAfterTheSaleWithoutRetryNeverLeasesTheSoldUnitAgain() async throws {
        let held = try await Self.crashAndOutlive(.afterSaleRecorded)
        try await TestServers.withStore { store, _, ledger in
            let recorded = try await ledger.sale(drop: held.drop, unit: held.unit)
            #expect(recorded?.claim == held.request.claim, "the sale is durable in Postgres")
            for index in 0..<5 {
                let outcome = try await store.claim(
                    ClaimRequest(
                        drop: held.drop, user: UserID("late-\(index)"), idempotencyKey: IdempotencyKey("l-\(index)")))
                if case .held = outcome.decision { Issue.record("the sold unit was leased again") }
            }
            let snapshot = try await store.inspect(drop: held.drop)
            #expect(snapshot.free == 0 && snapshot.held == 1, "the unit waits in limbo for the reconciler: \(snapshot)")
        }
    }

    @Test func anotherLeaseOnASoldUnitCannotBeSoldAgain() async throws {
        // The ledger is the last guard: a second sale of a unit is refused whatever Redis says.
        try await TestServers.withStore { store, _, ledger in
            let held = try await Self.holdOne(store)
            let sale = try await store.confirm(held.request)
            let forged = Sale(
                drop: held.drop, unit: held.unit, claim: ClaimID(drop: held.drop, number: 999),
                fence: Fence(sale.fence.value + 1), orderRef: nil)
            let error = await #expect(throws: DibsError.self) { try await ledger.recordSale(forged) }
            #expect(error?.code == .unitAlreadySold)
        }
    }
}
