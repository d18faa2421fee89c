import DibsCore
import DibsPostgres
import LeaseStoreConformance
import PostgresNIO
import Testing

@Suite("The HTTP service's Postgres stores, against the Postgres of scripts/dev")
struct PostgresServiceStoreTests {
    @Test func idempotencyAnswers() async throws {
        try await TestPostgres.withClient { client in
            let store = PostgresIdempotencyStore(
                client: client, server: try TestPostgres.url(), logger: TestPostgres.logger)
            try await ServiceStoreContracts.verifyIdempotency(store)
            // An entry past its time is deleted by the purge, and only such entries are.
            let key = "purge-\(UInt32.random(in: 0...UInt32.max))"
            #expect(try await store.begin(key: key, fingerprint: [1], pendingFor: .milliseconds(1)) == .started)
            let kept = "kept-\(UInt32.random(in: 0...UInt32.max))"
            #expect(try await store.begin(key: kept, fingerprint: [1], pendingFor: .seconds(60)) == .started)
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await store.purgeExpired() >= 1)
            let rows = try await client.query(
                "SELECT key FROM dibs_idempotency WHERE key IN (\(key), \(kept))", logger: TestPostgres.logger
            ).collect()
            #expect(try rows.map { try $0.decode(String.self) } == [kept])
        }
    }

    @Test func apiKeys() async throws {
        try await TestPostgres.withClient { client in
            try await ServiceStoreContracts.verifyAPIKeys(
                PostgresAPIKeyStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger))
        }
    }

    @Test func dropDirectory() async throws {
        try await TestPostgres.withClient { client in
            let url = try TestPostgres.url()
            let store = PostgresLeaseStore(client: client, server: url, logger: TestPostgres.logger)
            let directory = PostgresDropDirectory(client: client, server: url, logger: TestPostgres.logger)
            let drop = try DropID("directory-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))")
            #expect(try await directory.locate(drop) == nil)
            try await store.createDrop(DropConfig(id: drop, units: 1, opensAt: SystemClock().now()))
            #expect(try await directory.locate(drop) == DropLocation(backend: "postgres", cancelled: false))
            try await directory.cancel(drop)
            #expect(try await directory.locate(drop) == DropLocation(backend: "postgres", cancelled: true))
            await #expect(throws: DibsError.self) {
                try await directory.cancel(DropID("no-such-drop-for-the-directory"))
            }
        }
    }
}
