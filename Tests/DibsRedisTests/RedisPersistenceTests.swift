import DibsRedis
import Foundation
import Testing

/// `RedisPersistence` reads what a Redis restart would lose from the server's own settings.
@Suite("Redis persistence check, against a Redis of its own", .serialized)
struct RedisPersistenceTests {
    @Test func onlyAnAppendOnlyFileFsyncedOnEveryWriteIsDurable() async throws {
        let server = try ScratchRedis()
        defer { server.destroy() }
        let client = RedisClient(url: server.url, logger: TestServers.logger)
        defer { client.close() }
        func set(_ name: String, _ value: String) async throws {
            let reply = try await client.send(["CONFIG", "SET", name, value])
            #expect(reply.text == "OK", "CONFIG SET \(name) \(value): \(reply)")
        }

        // The scratch server starts with no append-only file.
        guard case .atRisk(let noFile) = await RedisPersistence.check(client) else {
            Issue.record("a Redis without an append-only file passed")
            return
        }
        #expect(noFile.contains("appendonly no"), "\(noFile)")
        try await set("appendonly", "yes")
        try await set("appendfsync", "everysec")
        guard case .atRisk(let everySecond) = await RedisPersistence.check(client) else {
            Issue.record("a Redis fsyncing every second passed")
            return
        }
        #expect(everySecond.contains("everysec"), "\(everySecond)")
        try await set("appendfsync", "always")
        #expect(await RedisPersistence.check(client) == .durable)

        // A Redis that cannot be asked is not taken for durable.
        try server.stop()
        guard case .unknown(let note) = await RedisPersistence.check(client) else {
            Issue.record("a stopped Redis was judged")
            return
        }
        #expect(note.contains("could not read"), "\(note)")
    }
}
