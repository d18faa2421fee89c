import DibsCore
import DibsPostgres
import Foundation
import LeaseStoreConformance
import Logging
import PostgresNIO

@testable import DibsRedis

/// The Redis and Postgres the tests run against (`DIBS_REDIS_URL`, `DIBS_POSTGRES_URL`, set
/// by `scripts/dev test`). A missing URL fails the test: these tests never skip.
enum TestServers {
    static let logger = Logger(label: "dibs.tests.redis")

    static func redisURL() throws -> RedisURL {
        try RedisURL(LocalServers.required("DIBS_REDIS_URL"))
    }

    static func postgresURL() throws -> PostgresURL {
        try PostgresURL(LocalServers.required("DIBS_POSTGRES_URL"))
    }

    /// A Redis store on `redis` (default: the shared server) with its ledger in the shared Postgres.
    static func withStore<Result: Sendable>(
        redis: RedisURL? = nil, configuration: RedisClient.Configuration = .init(),
        crashPoint: RedisLeaseStore.CrashPoint? = nil, storeConfiguration: RedisLeaseStore.Configuration = .init(),
        _ body: @Sendable (RedisLeaseStore, RedisClient, PostgresSaleLedger) async throws -> Result
    ) async throws -> Result {
        let postgres = try postgresURL()
        let redisURL = try redis ?? redisURL()
        return try await PostgresClient.withRunning(postgres, logger: logger) { pg in
            let client = RedisClient(url: redisURL, configuration: configuration, logger: logger)
            defer { client.close() }
            let ledger = PostgresSaleLedger(client: pg, server: postgres, logger: logger)
            let store = RedisLeaseStore(
                client: client, ledger: ledger, configuration: storeConfiguration, crashPoint: crashPoint)
            return try await body(store, client, ledger)
        }
    }
}

/// A private Redis server for a test that restarts it or sets a password.
final class ScratchRedis: Sendable {
    let port: Int
    let directory: String

    init(password: String? = nil) throws {
        port = try LocalServers.freePort()
        directory = NSTemporaryDirectory() + "dibs-redis-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try start(password: password)
    }

    var url: RedisURL { try! RedisURL("redis://127.0.0.1:\(port)") }

    func start(password: String? = nil) throws {
        var arguments = [
            "--bind", "127.0.0.1", "--port", "\(port)", "--daemonize", "yes", "--dir", directory, "--save", "",
            "--appendonly", "no", "--pidfile", "\(directory)/redis.pid", "--logfile", "\(directory)/redis.log",
        ]
        if let password { arguments += ["--requirepass", password] }
        try LocalServers.run("/usr/bin/redis-server", arguments)
        for _ in 0..<50 {
            if (try? LocalServers.run(
                "/usr/bin/redis-cli", ["-p", "\(port)", "--no-auth-warning", "-a", password ?? "", "ping"]))
                != nil
            {
                return
            }
            usleep(100_000)
        }
        throw SetupError(description: "the scratch Redis did not start on \(port)")
    }

    func stop() throws {
        guard
            let pid = try? String(contentsOfFile: "\(directory)/redis.pid", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines), let number = Int32(pid)
        else { return }
        kill(number, SIGKILL)
        for _ in 0..<50 where kill(number, 0) == 0 { usleep(50_000) }
        try? FileManager.default.removeItem(atPath: "\(directory)/redis.pid")
    }

    func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
