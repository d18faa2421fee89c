import DibsApp
import DibsCore
import DibsHTTP
import DibsPostgres
import DibsRedis
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LeaseStoreConformance
import Logging
import Synchronization
import XCTest

/// `dibs serve` on a real socket, against the Redis and Postgres of `scripts/dev`.
final class LiveServerTests: XCTestCase {
    func testClaimPathOnRedisAndPostgres() async throws {
        let (server, operatorKey, storefrontKey) = try await LiveServer.startOnDevServers { configuration in
            configuration.settings.perIPLimit = nil
            configuration.settings.perShopperLimit = RateLimit(perSecond: 1, burst: 2)
            configuration.settings.costlyCountsFreshFor = .seconds(60)
        }
        defer { server.stop() }
        let api = API(operatorKey: operatorKey, storefrontKey: storefrontKey, send: server.send)
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)

        for backend in ["redis", "postgres"] {
            let drop = "live-\(backend)-\(tag)"
            let created = try await api.createDrop(drop, units: 3, extra: #","backend":"\#(backend)""#)
            XCTAssertEqual(created.status, 201, created.text)
            XCTAssertEqual(created.string("backend"), backend)

            // 20 shoppers at once: 3 held, 3 waitlisted, the rest sold out; no unit twice.
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for index in 0..<20 { group.addTask { try await api.claim(drop, user: "shopper-\(index)-\(tag)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let held = replies.filter { $0.status == 201 }
            XCTAssertEqual(held.count, 3, "\(backend): \(replies.map(\.status))")
            XCTAssertEqual(Set(held.compactMap { $0.int("unit") }), [0, 1, 2])
            XCTAssertEqual(replies.filter { $0.status == 202 }.count, 3, "\(backend): \(replies.map(\.status))")
            XCTAssertEqual(replies.filter { $0.problem == "sold-out" }.count, 14)

            let winner = held[0]
            let claim = try XCTUnwrap(winner.string("claim"))
            let token = try XCTUnwrap(winner.string("hold_token"))
            let confirmed = try await api.call(
                .post, "/v1/claims/\(claim)/confirm", idempotencyKey: "confirm-\(claim)",
                body: #"{"hold_token":"\#(token)","order_ref":"o-\#(backend)"}"#)
            XCTAssertEqual(confirmed.status, 200, confirmed.text)
            let replayed = try await api.call(
                .post, "/v1/claims/\(claim)/confirm", idempotencyKey: "confirm-\(claim)",
                body: #"{"hold_token":"\#(token)","order_ref":"o-\#(backend)"}"#)
            XCTAssertEqual(replayed.text, confirmed.text)
            XCTAssertEqual(replayed.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            let status = try await api.call(.get, "/v1/claims/\(claim)")
            XCTAssertEqual(status.string("state"), "confirmed")
            let counts = try await api.call(.get, "/v1/drops/\(drop)")
            XCTAssertEqual(counts.int("sold"), 1)
            XCTAssertEqual(counts.int("held"), 2)
            XCTAssertEqual(counts.int("waitlisted"), 3)

            // The same key again is the first answer, token and all: kept with the claim in
            // Redis, kept by the service for Postgres.
            let other = "live-\(backend)-again-\(tag)"
            try await api.createDrop(other, units: 2, extra: #","backend":"\#(backend)""#)
            let first = try await api.claim(other, user: "again-\(backend)-\(tag)", key: "again")
            XCTAssertEqual(first.status, 201, first.text)
            XCTAssertNotNil(first.string("hold_token"))
            let again = try await api.claim(other, user: "again-\(backend)-\(tag)", key: "again")
            XCTAssertEqual(again.text, first.text, backend)
            XCTAssertEqual(again.headers[HTTPField.Name("Idempotent-Replayed")!], "true", backend)

            // A drop polled again: Redis is counted each time; Postgres, whose counting reads
            // every free and held unit, answers with its last counts until they are old (60 s).
            let polled = try await api.call(.get, "/v1/drops/\(other)")
            XCTAssertEqual(polled.int("held"), 1, backend)
            let second = try await api.claim(other, user: "second-\(backend)-\(tag)")
            XCTAssertEqual(second.status, 201, second.text)
            let repolled = try await api.call(.get, "/v1/drops/\(other)")
            XCTAssertEqual(repolled.int("held"), backend == "postgres" ? 1 : 2, backend)
        }

        // The per-shopper bucket is in Redis.
        let drop = "live-limit-\(tag)"
        try await api.createDrop(drop, units: 10, extra: #","backend":"redis","per_user_limit":5"#)
        for key in ["e1", "e2"] {
            let reply = try await api.claim(drop, user: "eager-\(tag)", key: key)
            XCTAssertEqual(reply.status, 201, reply.text)
        }
        let limited = try await api.claim(drop, user: "eager-\(tag)", key: "e3")
        XCTAssertEqual(limited.status, 429)
        XCTAssertEqual(limited.headers[.retryAfter], "1")

        let ready = try await api.call(.get, "/readyz", key: .none)
        XCTAssertEqual(ready.status, 200, ready.text)
    }
}

/// Claims on a Redis drop answered on the event loop that read them (the rate limits off, as
/// on a staging copy): one script call on that loop's Redis connection, no task.
final class LiveEventLoopClaimTests: XCTestCase {
    /// A server on the dev Redis and Postgres, and a fresh Redis drop of `units` (with
    /// `extra` JSON fields) on which one claim was answered, by the router, which so learns
    /// the drop. Calls `body` with the API, the drop, and that first answer.
    private func withDrop(
        units: Int, extra: String, _ adjust: (inout ServeConfiguration) -> Void,
        _ body: (API, String, Reply) async throws -> Void
    ) async throws {
        let (server, operatorKey, storefrontKey) = try await LiveServer.startOnDevServers(adjust)
        defer { server.stop() }
        let api = API(operatorKey: operatorKey, storefrontKey: storefrontKey, send: server.send)
        let drop = "live-loop-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        try await api.createDrop(drop, units: units, extra: #","backend":"redis"\#(extra)"#)
        let first = try await api.claim(drop, user: "first-\(drop)", key: "first")
        XCTAssertEqual(first.status, 201, first.text)
        try await body(api, drop, first)
    }

    func testClaimsOnARedisDropAreAnsweredOnTheEventLoop() async throws {
        let limitsOff: (inout ServeConfiguration) -> Void = {
            $0.settings.perIPLimit = nil
            $0.settings.perKeyLimit = nil
            $0.settings.perShopperLimit = nil
        }
        try await withDrop(units: 3, extra: #","waitlist_capacity":0"#, limitsOff) { api, drop, first in
            let before = try await api.claimsAnsweredOnEventLoop()
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for index in 0..<30 { group.addTask { try await api.claim(drop, user: "shopper-\(index)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let held = replies.filter { $0.status == 201 }
            XCTAssertEqual(held.count, 2, "\(replies.map(\.status))")
            XCTAssertEqual(Set(held.compactMap { $0.int("unit") } + [first.int("unit") ?? -1]), [0, 1, 2])
            XCTAssertEqual(replies.filter { $0.problem == "sold-out" }.count, 28)
            let again = try await api.claim(drop, user: "first-\(drop)", key: "first")
            XCTAssertEqual(again.text, first.text, "the replay carries the first answer, token and all")
            XCTAssertEqual(again.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            let reused = try await api.claim(drop, user: "someone-else", key: "first")
            XCTAssertEqual(reused.problem, "idempotency-key-reused")

            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after - before, 32, "claims went to the router")
            let counts = try await api.call(.get, "/v1/drops/\(drop)")
            XCTAssertEqual(counts.int("held"), 3)
        }
    }

    /// The rate limits kept in Redis, as `dibs serve` runs by default: the buckets are asked
    /// on the event loop too, before the claim script.
    func testClaimsWithRateLimitsInRedisAreAnsweredOnTheEventLoop() async throws {
        let slowShoppers: (inout ServeConfiguration) -> Void = {
            $0.settings.perShopperLimit = RateLimit(perSecond: 0.01, burst: 2)
        }
        try await withDrop(units: 10, extra: #","per_user_limit":5"#, slowShoppers) { api, drop, _ in
            let before = try await api.claimsAnsweredOnEventLoop()
            for key in ["e1", "e2"] {
                let reply = try await api.claim(drop, user: "eager-\(drop)", key: key)
                XCTAssertEqual(reply.status, 201, reply.text)
            }
            let limited = try await api.claim(drop, user: "eager-\(drop)", key: "e3")
            XCTAssertEqual(limited.status, 429)
            XCTAssertEqual(limited.problem, "rate-limited")
            XCTAssertNotNil(limited.headers[.retryAfter])
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after - before, 3, "claims went to the router")
            let metrics = try await api.call(.get, "/metrics", key: .none).text
            XCTAssertTrue(metrics.contains(#"dibs_claims_total{outcome="rate-limited"} 1\#n"#), metrics)
        }
    }
}

/// A `dibs serve` running in this process on a free port (or, made with a port alone, one
/// running elsewhere, to send requests to).
final class LiveServer: Sendable {
    let port: Int
    private let task: Task<Void, any Error>

    init(port: Int, task: Task<Void, any Error> = Task {}) {
        self.port = port
        self.task = task
    }

    static func start(
        _ configuration: ServeConfiguration, logger: Logger = LiveServer.quietLogger
    ) async throws -> LiveServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await runServer(configuration, logger: logger) { continuation.yield($0) }
        }
        for await port in ports { return LiveServer(port: port, task: task) }
        _ = try await task.value
        throw SetupError(description: "dibs serve stopped before it listened")
    }

    func stop() { task.cancel() }

    static var quietLogger: Logger {
        var logger = Logger(label: "live-test")
        logger.logLevel = .critical
        return logger
    }

    /// A server on the Redis and Postgres of `scripts/dev`, with a fresh operator key and
    /// storefront key in its key store.
    static func startOnDevServers(
        logger: Logger = LiveServer.quietLogger, _ adjust: (inout ServeConfiguration) -> Void = { _ in }
    ) async throws -> (LiveServer, operatorKey: String, storefrontKey: String) {
        let postgres = try PostgresURL(LocalServers.required("DIBS_POSTGRES_URL"))
        let redis = try RedisURL(LocalServers.required("DIBS_REDIS_URL"))
        let keys = try await freshKeys()
        var configuration = ServeConfiguration(stores: .servers(postgres: postgres, redis: redis))
        configuration.port = 0
        adjust(&configuration)
        return (try await start(configuration, logger: logger), keys.operatorKey, keys.storefrontKey)
    }

    /// A new operator key and storefront key in the key store of the dev Postgres.
    static func freshKeys() async throws -> (operatorKey: String, storefrontKey: String) {
        let op = APIKey.generate()
        let sf = APIKey.generate()
        try await withKeyStore(try PostgresURL(LocalServers.required("DIBS_POSTGRES_URL"))) { keys in
            let now = SystemClock().now()
            try await keys.insert(op.record(name: "test-operator", scope: .operator, createdAt: now))
            try await keys.insert(sf.record(name: "test-storefront", scope: .storefront, createdAt: now))
        }
        return (op.text, sf.text)
    }

    /// One request on a new connection.
    @Sendable func send(_ method: HTTPRequest.Method, _ path: String, _ headers: HTTPFields, _ body: [UInt8]?)
        async throws -> Reply
    {
        let client = TestClient(host: "127.0.0.1", port: port)
        client.connect()
        defer { Task { try? await client.shutdown() } }
        let response = try await client.execute(
            TestClient.Request(path, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) }))
        return Reply(
            status: Int(response.status.code), headers: response.headers,
            text: response.body.map { String(buffer: $0) } ?? "")
    }
}

/// `dibs serve` says at start when its Redis would not keep the Redis drops through a restart.
final class RedisPersistenceWarningTests: XCTestCase {
    func testServingOnARedisWithoutAnAppendOnlyFileWarns() async throws {
        // The Redis of `scripts/dev` is throwaway: it writes no append-only file.
        let lines = CapturedLog()
        var logger = Logger(label: "live-test") { _ in lines }
        logger.logLevel = .notice
        let (server, _, _) = try await LiveServer.startOnDevServers(logger: logger)
        defer { server.stop() }
        for _ in 0..<100 where !lines.messages.contains(where: { $0.contains("append-only file") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let warning = lines.messages.first { $0.contains("append-only file") }
        XCTAssertNotNil(warning, "\(lines.messages)")
        XCTAssertTrue(warning?.hasPrefix("warning ") == true, "\(warning ?? "")")
    }
}

/// Keeps what a logger logs, as `level message` lines.
final class CapturedLog: LogHandler, Sendable {
    private let lines = Mutex<[String]>([])
    var messages: [String] { lines.withLock { $0 } }

    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        lines.withLock { $0.append("\(event.level) \(event.message)") }
    }
}
