import DibsCore
import Foundation
import Testing

@testable import DibsRedis

/// A wave of leases running out at once is settled a batch per call, except where an answer
/// depends on the rest, against the Redis of scripts/dev.
@Suite("RedisLeaseStore settling expired leases", .serialized)
struct RedisSettleTests {
    static let batch = 64

    /// Holds of 3 s: every test claims its units one after another well within that, so all
    /// the holds run out after the fill, in the order they were taken.
    static func drop(_ name: String, units: Int, waitlist: Int = 0, limit: Int = 1) throws -> DropConfig {
        try DropConfig(
            id: DropID("\(name)-\(UInt32.random(in: 0...UInt32.max))"), units: units, holdTTL: .seconds(3),
            perUserLimit: limit, waitlistCapacity: waitlist, opensAt: SystemClock().now().adding(.seconds(-1)))
    }

    static func claim(_ store: RedisLeaseStore, _ drop: DropID, user: String, key: String) async throws
        -> ClaimOutcome.Decision
    {
        try await store.claim(
            ClaimRequest(drop: drop, user: try UserID(user), idempotencyKey: try IdempotencyKey(key))
        ).decision
    }

    /// Claims every unit (and `waitlisted` more), each by its own shopper.
    static func fill(_ store: RedisLeaseStore, _ drop: DropConfig, waitlisted: Int = 0) async throws {
        for index in 0..<(drop.units + waitlisted) {
            _ = try await claim(store, drop.id, user: "filler-\(index)", key: "fill-\(index)")
        }
    }

    /// The drop's `held` counter, read straight from Redis (the counts would settle a batch).
    static func held(_ client: RedisClient, _ drop: DropID) async throws -> Int {
        let reply = try await client.send(["GET", RedisLeaseStore.prefix(drop) + "held"])
        return try #require(reply.text.flatMap { Int($0) })
    }

    @Test func aClaimAfterAWaveSettlesOneBatch() async throws {
        try await TestServers.withStore { store, client, _ in
            let drop = try Self.drop("settle-batch", units: 500)
            try await store.createDrop(drop)
            try await Self.fill(store, drop)
            #expect(try await Self.held(client, drop.id) == 500)
            try await Task.sleep(for: .milliseconds(3_300))

            guard case .held = try await Self.claim(store, drop.id, user: "late", key: "late") else {
                Issue.record("the claim after the wave got no unit")
                return
            }
            // One batch ended, the late claim holds one of its units.
            #expect(try await Self.held(client, drop.id) == 500 - Self.batch + 1)
            _ = try await store.reapExpired(drop: drop.id)
            #expect(try await Self.held(client, drop.id) == 1, "reaping settles the rest")
        }
    }

    @Test func aUnitBehindAWaitlistLongerThanABatchIsFound() async throws {
        try await TestServers.withStore { store, client, _ in
            // 200 units held, 100 waitlisted; all 200 leases run out: 100 units go to the
            // waitlist, 100 come free, so a new claim must get one, not a place in line.
            let drop = try Self.drop("settle-waitlist", units: 200, waitlist: 100)
            try await store.createDrop(drop)
            try await Self.fill(store, drop, waitlisted: 100)
            try await Task.sleep(for: .milliseconds(3_300))
            let decision = try await Self.claim(store, drop.id, user: "late", key: "late")
            guard case .held = decision else {
                Issue.record("a unit was free behind the waitlist, the claim got \(decision)")
                return
            }
            // Two batches: 100 units to the waitlist, 28 free, one of them now the late claim's;
            // the other 72 leases that ran out wait for later calls.
            #expect(try await Self.held(client, drop.id) == 200 - 28 + 1)
        }
    }

    @Test func aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit() async throws {
        try await TestServers.withStore { store, _, _ in
            let drop = try Self.drop("settle-limit", units: 300)
            try await store.createDrop(drop)
            for index in 0..<200 {
                _ = try await Self.claim(store, drop.id, user: "early-\(index)", key: "early-\(index)")
            }
            // The last lease to run out, well behind a batch of others.
            _ = try await Self.claim(store, drop.id, user: "pat", key: "pat-1")
            try await Task.sleep(for: .milliseconds(3_300))
            let again = try await Self.claim(store, drop.id, user: "pat", key: "pat-2")
            guard case .held = again else {
                Issue.record("pat's lease ran out, yet the second claim got \(again)")
                return
            }
        }
    }

    @Test func statusOfALeaseThatRanOutBehindTheBatchSaysExpired() async throws {
        try await TestServers.withStore { store, _, _ in
            let drop = try Self.drop("settle-status", units: 300)
            try await store.createDrop(drop)
            try await Self.fill(store, drop)
            try await Task.sleep(for: .milliseconds(3_300))
            let status = try await store.status(of: ClaimID(drop: drop.id, number: 300))
            #expect(status.state == .expired, "\(status)")
        }
    }
}
