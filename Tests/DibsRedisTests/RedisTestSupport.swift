import DibsCore
import DibsPostgres
import Foundation
import Logging
import PostgresNIO

@testable import DibsRedis

/// The Redis and Postgres the tests run against (`DIBS_REDIS_URL`, `DIBS_POSTGRES_URL`, set
/// by `scripts/dev test`). A missing URL fails the test: these tests never skip.
enum TestServers {
    static let logger = Logger(label: "dibs.tests.redis")

    static func redisURL() throws -> RedisURL {
        guard let text = ProcessInfo.processInfo.environment["DIBS_REDIS_URL"] else {
            throw SetupError(description: "DIBS_REDIS_URL is not set: run the tests with scripts/dev test")
        }
        return try RedisURL(text)
    }

    static func postgresURL() throws -> PostgresURL {
        guard let text = ProcessInfo.processInfo.environment["DIBS_POSTGRES_URL"] else {
            throw SetupError(description: "DIBS_POSTGRES_URL is not set: run the tests with scripts/dev test")
        }
        return try PostgresURL(text)
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

struct SetupError: Error, CustomStringConvertible {
    let description: String
}

/// A private Redis server for a test that restarts it or sets a password.
final class ScratchRedis: Sendable {
    let port: Int
    let directory: String

    init(password: String? = nil) throws {
        port = try Self.freePort()
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
        try run("/usr/bin/redis-server", arguments)
        for _ in 0..<50 {
            if (try? run("/usr/bin/redis-cli", ["-p", "\(port)", "--no-auth-warning", "-a", password ?? "", "ping"]))
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

    private func run(_ tool: String, _ arguments: [String]) throws {
        let quoted = ([tool] + arguments).map { "'" + $0 + "'" }.joined(separator: " ")
        guard system(quoted + " >/dev/null 2>&1") == 0 else { throw SetupError(description: "\(tool) failed") }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw SetupError(description: "no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
