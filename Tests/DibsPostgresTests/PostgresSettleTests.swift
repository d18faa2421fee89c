import DibsCore
import DibsPostgres
import Foundation
import LeaseStoreConformance
import PostgresNIO
import Testing

/// A wave of leases running out at once is settled a batch per claim, except where an answer
/// depends on the rest (migration 008), against the Postgres of scripts/dev.
@Suite("PostgresLeaseStore settling expired leases", .serialized)
struct PostgresSettleTests {

    static func withStore(_ body: @Sendable (PostgresLeaseStore, PostgresClient) async throws -> Void)
        async throws
    {
        try await TestPostgres.withClient { client in
            try await body(
                PostgresLeaseStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger), client)
        }
    }

    /// Units held, read straight from the table (the counts would settle a batch).
    static func held(_ client: PostgresClient, _ drop: DropID) async throws -> Int {
        let rows = try await client.query(
            "SELECT count(*)::int FROM dibs_units WHERE drop_id = \(drop.rawValue) AND state = 'held'",
            logger: TestPostgres.logger
        ).collect()
        return try #require(rows.first).decode(Int.self)
    }

    static func wave(_ store: PostgresLeaseStore, _ client: PostgresClient) -> ExpiryWave {
        ExpiryWave(store: store) { drop in try await Self.held(client, drop) }
    }

    @Test func aClaimAfterAWaveSettlesOneBatch() async throws {
        try await Self.withStore { store, client in try await Self.wave(store, client).aClaimSettlesOneBatch() }
    }

    @Test func aUnitBehindAWaitlistLongerThanABatchIsFound() async throws {
        try await Self.withStore { store, client in
            try await Self.wave(store, client).aUnitBehindAWaitlistLongerThanABatchIsFound()
        }
    }

    @Test func aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit() async throws {
        try await Self.withStore { store, client in
            try await Self.wave(store, client).aShoppersOwnLeaseBehindTheBatchDoesNotHoldTheirLimit()
        }
    }

    @Test func statusOfALeaseThatRanOutBehindTheBatchSaysExpired() async throws {
        try await Self.withStore { store, client in try await Self.wave(store, client).statusOfTheLastLeaseSaysExpired()
        }
    }
}
