import DibsCore
import DibsPostgres
import Foundation
import LeaseStoreConformance
import Logging
import PostgresNIO
import Testing

@Suite("PostgresLeaseStore under faults", .serialized)
struct PostgresFaultTests {
    @Test func restartMidTestFailsFastThenWorksAgain() async throws {
        let server = try ScratchPostgres()
        defer { server.destroy() }
        let url = try PostgresURL(server.url)
        _ = try await PostgresClient.withRunning(url, logger: TestPostgres.logger) { client in
            _ = try await Migrator(client: client, logger: TestPostgres.logger).migrate(
                Migration.load(from: TestPostgres.schemaDirectory))
        }
        try await PostgresClient.withRunning(url, logger: TestPostgres.logger) { client in
            let store = PostgresLeaseStore(client: client, server: url, logger: TestPostgres.logger)
            let drop = try DropID("restart")
            try await store.createDrop(
                DropConfig(id: drop, units: 10, opensAt: SystemClock().now().adding(.seconds(-1))))
            let before = try await store.claim(request(drop, 1))
            #expect(before.decision != .rejected(.soldOut))

            try server.stop()
            let started = ContinuousClock.now
            let error = await #expect(throws: DibsError.self) { try await store.claim(request(drop, 2)) }
            #expect(error?.code == .storeUnavailable, "a claim while Postgres is down: \(String(describing: error))")
            #expect(error?.message.contains("127.0.0.1:\(server.port)") == true, "the error names the server")
            #expect(ContinuousClock.now - started < .seconds(10), "the call hung instead of failing")

            try server.start()
            var answered: ClaimOutcome?
            for _ in 0..<50 where answered == nil {
                answered = try? await store.claim(request(drop, 3))
                if answered == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            let after = try #require(answered, "claims did not work again after Postgres came back")
            #expect(after.claim != nil)
            let snapshot = try await store.inspect(drop: drop)
            #expect(snapshot.held == 2, "the claim before the crash and the one after hold units: \(snapshot)")
        }
    }

    @Test func aStatementPastTheTimeoutIsCancelled() async throws {
        var timedURL = try TestPostgres.url()
        timedURL.statementTimeout = .milliseconds(300)
        let url = timedURL
        let drop = try DropID("timeout-\(UInt32.random(in: 0...UInt32.max))")
        try await TestPostgres.withClient { blocker in
            let store = PostgresLeaseStore(client: blocker, server: url, logger: TestPostgres.logger)
            try await store.createDrop(
                DropConfig(id: drop, units: 1, opensAt: SystemClock().now().adding(.seconds(-1))))
            try await blocker.withConnection { connection in
                // Hold the claim key in an open transaction: a claim with that key must wait.
                try await connection.query("BEGIN", logger: TestPostgres.logger)
                try await connection.query(
                    """
                    INSERT INTO dibs_claims (drop_id, idempotency_key, user_id, state, first_state)
                    VALUES (\(drop.rawValue), 'k-1', 'someone', 'rejected', 'rejected')
                    """, logger: TestPostgres.logger)
                try await PostgresClient.withRunning(url, logger: TestPostgres.logger) { client in
                    let timed = PostgresLeaseStore(client: client, server: url, logger: TestPostgres.logger)
                    let error = await #expect(throws: DibsError.self) { try await timed.claim(request(drop, 1)) }
                    #expect(error?.code == .timeout, "\(String(describing: error))")
                    let other = try await timed.claim(request(drop, 2))
                    #expect(other.held != nil, "a claim that does not wait still works under the timeout")
                }
                try await connection.query("ROLLBACK", logger: TestPostgres.logger)
            }
        }
    }
}

func request(_ drop: DropID, _ index: Int) throws -> ClaimRequest {
    ClaimRequest(drop: drop, user: try UserID("user-\(index)"), idempotencyKey: try IdempotencyKey("k-\(index)"))
}
