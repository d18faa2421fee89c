import DibsCore
import Foundation
import LeaseStoreConformance
import Testing

@testable import DibsRedis

/// A wave of leases running out at once is settled a batch per call, except where an answer
/// depends on the rest, against the Redis of scripts/dev.
@Suite("RedisLeaseStore settling expired leases", .serialized)
struct RedisSettleTests {

    /// The drop's `held` counter, read straight from Redis (the counts would settle a batch).
    static func held(_ client: RedisClient, _ drop: DropID) async throws -> Int {
        let reply = try await client.send(["GET", RedisLeaseStore.prefix(drop) + "held"])
        return try #require(reply.text.flatMap { Int($0) })
    }

    static func wave(_ store: RedisLeaseStore, _ client: RedisClient) -> ExpiryWave {
        ExpiryWave(store: store) { drop in try await Self.held(client, drop) }
    }

    @Test func aClaimAfterAWaveSettlesOneBatch() async throws {
        try await TestServers.withStore { store, client, _ in try await Self.wave(store, client).aClaimSettlesOneBatch()
        }
    }

    @Test func aUnitBehindAWaitlistLongerThanABatchIsFound() async throws {
        try await TestServers.withStore { store, client, _ in
            try await Self.wave(store, client).aUnitBehindAWaitlistLongerThanABatchIsFound()
        }
    }

    @Test func aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit() async throws {
        try await TestServers.withStore { store, client, _ in
            try await Self.wave(store, client).aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit()
        }
    }

    @Test func statusOfALeaseThatRanOutBehindTheBatchSaysExpired() async throws {
        try await TestServers.withStore { store, client, _ in
            try await Self.wave(store, client).statusOfTheLastLeaseSaysExpired()
        }
    }
}
