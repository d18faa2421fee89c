import NIOCore
import NIOPosix
import Synchronization
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

    /// Commands started on an event loop are answered on it: each loop of the group has a
    /// connection of its own, so a request read there needs no thread hop.
    @Test func commandsStartedOnAnEventLoopAreAnsweredOnIt() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        var configuration = RedisClient.Configuration()
        configuration.connections = 2
        let client = RedisClient(
            url: try TestServers.redisURL(), configuration: configuration, group: group, logger: TestServers.logger)
        defer { client.close() }
        // Connects both (calls take the connections in turn).
        for _ in 0..<4 { #expect(try await client.send(["PING"]) == .status("PONG")) }

        let onTheirLoop = Atomic<Int>(0)
        let echoed = Atomic<Int>(0)
        let loops = Array(group.makeIterator())
        let perLoop = 500
        await withCheckedContinuation { (finished: CheckedContinuation<Void, Never>) in
            let remaining = Atomic<Int>(loops.count * perLoop)
            for (loopIndex, loop) in loops.enumerated() {
                loop.execute {
                    for index in 0..<perLoop {
                        let text = "loop-\(loopIndex)-\(index)"
                        client.start(["ECHO", text]) { reply in
                            if loop.inEventLoop { onTheirLoop.add(1, ordering: .relaxed) }
                            if case .success(.bulk(let bytes)) = reply, bytes == Array(text.utf8) {
                                echoed.add(1, ordering: .relaxed)
                            }
                            if remaining.subtract(1, ordering: .relaxed).newValue == 0 { finished.resume() }
                        }
                    }
                }
            }
        }
        #expect(echoed.load(ordering: .relaxed) == loops.count * perLoop, "a reply went to the wrong command")
        #expect(onTheirLoop.load(ordering: .relaxed) == loops.count * perLoop)
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
