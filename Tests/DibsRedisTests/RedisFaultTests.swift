import DibsCore
import Foundation
import LeaseStoreConformance
import NIOCore
import Testing

@testable import DibsRedis

@Suite("RedisLeaseStore under faults", .serialized)
struct RedisFaultTests {
    static func opened(_ name: String, units: Int = 10, ttl: Duration = .seconds(60)) throws -> DropConfig {
        try DropConfig(
            id: DropID("\(name)-\(UInt32.random(in: 0...UInt32.max))"), units: units, holdTTL: ttl,
            opensAt: SystemClock().now().adding(.seconds(-1)))
    }

    static func request(_ drop: DropID, _ index: Int) throws -> ClaimRequest {
        ClaimRequest(drop: drop, user: try UserID("user-\(index)"), idempotencyKey: try IdempotencyKey("k-\(index)"))
    }

    @Test func restartMidTestFailsFastThenWorksAgain() async throws {
        let server = try ScratchRedis()
        defer { server.destroy() }
        try await TestServers.withStore(redis: server.url) { store, _, _ in
            let drop = try Self.opened("redis-restart")
            try await store.createDrop(drop)
            let before = try await store.claim(Self.request(drop.id, 1))
            #expect(before.claim != nil)

            try server.stop()
            let started = ContinuousClock.now
            for index in 2...4 {
                let error = await #expect(throws: DibsError.self) {
                    try await store.claim(Self.request(drop.id, index))
                }
                #expect(error?.code == .storeUnavailable, "\(String(describing: error))")
                #expect(error?.message.contains("127.0.0.1:\(server.port)") == true)
            }
            let error = await #expect(throws: DibsError.self) {
                try await store.claimStarted(Self.request(drop.id, 9))
            }
            #expect(error?.code == .storeUnavailable, "\(String(describing: error))")
            #expect(ContinuousClock.now - started < .seconds(5), "calls waited instead of failing fast")

            // Redis comes back empty (no persistence here): the drop is rebuilt from the ledger
            // by creating it again, and claims work.
            try server.start()
            var recovered = false
            for _ in 0..<40 where !recovered {
                do {
                    try await store.createDrop(drop)
                    recovered = true
                } catch let error as DibsError where error.code == .storeUnavailable {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(recovered, "the store did not reconnect after Redis came back")
            let after = try await store.claim(Self.request(drop.id, 5))
            #expect(after.claim != nil)
            let startedAfter = try await store.claimStarted(Self.request(drop.id, 6))
            #expect(startedAfter.claim != nil)
        }
    }

    @Test func scriptFlushMidTestReloadsTheScripts() async throws {
        try await TestServers.withStore { store, client, _ in
            let drop = try Self.opened("script-flush")
            try await store.createDrop(drop)
            _ = try await store.claim(Self.request(drop.id, 1))
            #expect(try await client.send(["SCRIPT", "FLUSH"]) == .status("OK"))
            let outcome = try await store.claim(Self.request(drop.id, 2))
            guard case .held = outcome.decision else {
                Issue.record("a claim after SCRIPT FLUSH got \(outcome.decision)")
                return
            }
            #expect(try await client.send(["SCRIPT", "FLUSH"]) == .status("OK"))
            let started = try await store.claimStarted(Self.request(drop.id, 3))
            guard case .held = started.decision else {
                Issue.record("a started claim after SCRIPT FLUSH got \(started.decision)")
                return
            }
        }
    }

    @Test func aCommandPastItsTimeoutFailsWithTimeout() async throws {
        var configuration = RedisClient.Configuration()
        configuration.commandTimeout = .milliseconds(200)
        let server = try ScratchRedis()
        defer { server.destroy() }
        try await TestServers.withStore(redis: server.url, configuration: configuration) { store, client, _ in
            let drop = try Self.opened("timeout")
            try await store.createDrop(drop)
            // Pause every client for a second: the next command cannot be answered in time.
            let paused = try await client.send(["CLIENT", "PAUSE", "1000", "ALL"])
            #expect(paused == .status("OK"))
            // Two commands, one timer per connection: each must fail at its own deadline (a
            // command the timer missed would be answered when the pause ends, and not fail).
            let startedClaim = Task { try await store.claimStarted(Self.request(drop.id, 2)) }
            let error = await #expect(throws: DibsError.self) { try await store.claim(Self.request(drop.id, 1)) }
            #expect(error?.code == .timeout, "\(String(describing: error))")
            let startedError = await #expect(throws: DibsError.self) { try await startedClaim.value }
            #expect(startedError?.code == .timeout, "\(String(describing: startedError))")
            try await Task.sleep(for: .milliseconds(1200))
            // The late reply was read and dropped; the connection is still in step.
            let status = try await store.claim(Self.request(drop.id, 1))
            #expect(status.claim != nil)
            #expect(try await client.send(["PING"]) == .status("PONG"))
        }
    }

    @Test func aWrongPasswordIsAClearError() async throws {
        let server = try ScratchRedis(password: "right-password")
        defer { server.destroy() }
        var url = server.url
        url.password = "wrong-password"
        let client = RedisClient(url: url, logger: TestServers.logger)
        defer { client.close() }
        let error = await #expect(throws: DibsError.self) { try await client.send(["PING"]) }
        #expect(error?.code == .storeUnavailable)
        #expect(error?.message.contains("refused the credentials") == true, "\(String(describing: error))")

        url.password = "right-password"
        let good = RedisClient(url: url, logger: TestServers.logger)
        defer { good.close() }
        #expect(try await good.send(["PING"]) == .status("PONG"))
    }

    @Test func aMillionUnitDropIsCreatedAtOnce() async throws {
        try await TestServers.withStore { store, _, _ in
            let drop = try Self.opened("million", units: 1_000_000)
            try await store.createDrop(drop)
            let snapshot = try await store.inspect(drop: drop.id)
            #expect(snapshot.free == 1_000_000 && snapshot.units == 1_000_000)
            let outcome = try await store.claim(Self.request(drop.id, 1))
            #expect(outcome.decision != .rejected(.soldOut))
        }
    }

    @Test func theAnsweredKeysOfALargeDropAreReadWhole() async throws {
        try await TestServers.withStore { store, client, _ in
            let drop = try Self.opened("many-keys", units: 100)
            try await store.createDrop(drop)
            _ = try await store.claim(Self.request(drop.id, 1))
            // 50,000 more keys, several pages of HSCAN: every other one first answered "sold
            // out" (its claim marked '-'), which is not an answered key.
            let hash = RedisLeaseStore.prefix(drop.id) + "keys"
            for batch in 0..<25 {
                _ = try await client.send(
                    ["HSET", hash] + (0..<1_000).flatMap { ["bulk-\(batch)-\($0)", "7", "sold-\(batch)-\($0)", "-8"] })
            }
            let keys = try await store.answeredKeys(drop: drop.id)
            #expect(keys.count == 25_001)
            let first = try IdempotencyKey("k-1")
            let last = try IdempotencyKey("bulk-24-999")
            #expect(keys.contains(first) && keys.contains(last))
            #expect(!keys.contains(try IdempotencyKey("sold-0-0")))
        }
    }
}

@Suite struct RedisURLTests {
    @Test func parses() throws {
        let url = try RedisURL("redis://user:secret@127.0.0.1:6380/2")
        #expect(url.user == "user" && url.password == "secret" && url.port == 6380 && url.database == 2)
        #expect(url.description == "redis://127.0.0.1:6380/2")
        #expect(try RedisURL("redis://localhost").port == 6379)
        #expect(try RedisURL("redis://:pw@h:1").password == "pw")
    }

    @Test(arguments: ["http://x", "redis://", "redis://h:0", "redis://h:1/x"])
    func refuses(_ text: String) {
        #expect(throws: DibsError.self) { try RedisURL(text) }
    }
}

@Suite struct RESPCodecTests {
    @Test func encodesAndDecodes() throws {
        var bytes = ByteBuffer()
        RESPCodec.encode([Array("SET".utf8), Array("k".utf8), [0, 255]], into: &bytes)
        #expect(
            Array(bytes.readableBytesView) == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n".utf8) + [0, 255, 13, 10])
        // Lengths count UTF-8 bytes, in as many digits as they have.
        var text = ByteBuffer()
        let long = String(repeating: "y", count: 1203)
        let arguments = ["GET", "é", "", String(repeating: "x", count: 12), long].map(\.utf8)
        RESPCodec.encode(arguments, into: &text)
        #expect(
            String(buffer: text)
                == "*5\r\n$3\r\nGET\r\n$2\r\né\r\n$0\r\n\r\n$12\r\nxxxxxxxxxxxx\r\n$1203\r\n\(long)\r\n")
        var many = ByteBuffer()
        RESPCodec.encode(Array(repeating: Array("a".utf8), count: 10), into: &many)
        #expect(String(buffer: many) == "*10\r\n" + String(repeating: "$1\r\na\r\n", count: 10))
        #expect(RESPCodec.capacity(arguments) >= text.readableBytes)
        let decoder = RESPDecoder()
        let wire = Array("+OK\r\n:42\r\n$-1\r\n*2\r\n$1\r\na\r\n-ERR no\r\n$3\r\nab".utf8)
        try wire.withUnsafeBytes { try decoder.feed($0) }
        #expect(try decoder.next() == .status("OK"))
        #expect(try decoder.next() == .integer(42))
        #expect(try decoder.next() == .null)
        #expect(try decoder.next() == .array([.bulk(Array("a".utf8)), .error("ERR no")]))
        #expect(try decoder.next() == nil)  // "$3\r\nab" is not complete yet
        try Array("c\r\n".utf8).withUnsafeBytes { try decoder.feed($0) }
        #expect(try decoder.next() == .bulk(Array("abc".utf8)))
    }

    @Test func refusesGarbage() throws {
        let decoder = RESPDecoder()
        try Array("?what\r\n".utf8).withUnsafeBytes { try decoder.feed($0) }
        #expect(throws: RESPProtocolError.self) { try decoder.next() }
    }
}
