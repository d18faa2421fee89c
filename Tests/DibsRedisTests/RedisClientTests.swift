import Testing

@testable import DibsRedis

@Suite("RedisClient against the Redis of scripts/dev")
struct RedisClientTests {
    @Test func thousandsOfPipelinedCommandsGetTheirOwnReplies() async throws {
        let client = RedisClient(url: try TestServers.redisURL(), logger: TestServers.logger)
        defer { client.close() }
        let key = "dibs-test-pipeline-\(UInt32.random(in: 0...UInt32.max))"
        // Each command echoes its own argument: a reply matched to the wrong command shows.
        let mismatches = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<5_000 {
                group.addTask {
                    try await client.send(["ECHO", "\(key)-\(index)"]) != .bulk(Array("\(key)-\(index)".utf8))
                }
            }
            var count = 0
            for try await mismatch in group where mismatch { count += 1 }
            return count
        }
        #expect(mismatches == 0)
        #expect(try await client.send(["INCRBY", key, "5"]) == .integer(5))
        #expect(try await client.send(["DEL", key]) == .integer(1))
    }

    @Test func anErrorReplyIsAValueNotAFailure() async throws {
        let client = RedisClient(url: try TestServers.redisURL(), logger: TestServers.logger)
        defer { client.close() }
        let reply = try await client.send(["NO-SUCH-COMMAND"])
        guard case .error(let message) = reply else {
            Issue.record("expected an error reply, got \(reply)")
            return
        }
        #expect(message.contains("unknown command"))
        #expect(try await client.send(["PING"]) == .status("PONG"), "the connection stays usable")
    }
}
