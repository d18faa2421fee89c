import DibsPostgres
import Foundation
import LeaseStoreConformance
import Logging
import PostgresNIO

/// The Postgres the tests run against: `DIBS_POSTGRES_URL`, which `scripts/dev test` sets.
/// A missing URL fails the test: these tests need a real server and must never skip.
enum TestPostgres {
    static func url() throws -> PostgresURL {
        try PostgresURL(LocalServers.required("DIBS_POSTGRES_URL"))
    }

    static let logger = Logger(label: "dibs.tests.postgres")

    /// The repository's schema directory.
    static var schemaDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("schema").path
    }

    static func withClient<Result: Sendable>(
        database: String? = nil, _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        var url = try url()
        if let database { url.database = database }
        return try await PostgresClient.withRunning(url, logger: logger, body)
    }

    /// A fresh, empty database for a test that must start from nothing (the migrator's).
    static func withScratchDatabase<Result: Sendable>(_ body: @Sendable (String) async throws -> Result) async throws
        -> Result
    {
        let name = "dibs_scratch_\(UInt32.random(in: 0...UInt32.max))"
        _ = try await withClient { client in
            try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"))
        }
        do {
            let result = try await body(name)
            try await dropDatabase(name)
            return result
        } catch {
            try? await dropDatabase(name)
            throw error
        }
    }

    private static func dropDatabase(_ name: String) async throws {
        _ = try await withClient { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"))
        }
    }
}
