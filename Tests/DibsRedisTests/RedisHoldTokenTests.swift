import DibsCore
import Foundation
import Testing

@testable import DibsRedis

/// A hold token is stored only as its hash (DESIGN.md): what the claim script keeps for a
/// replay is the token masked, against the Redis and Postgres of scripts/dev.
@Suite("RedisLeaseStore keeps hold tokens masked")
struct RedisHoldTokenTests {
    @Test func noTokenIsInRedisAndOnlyTheMaskingKeyReplaysIt() async throws {
        try await TestServers.withStore { store, client, ledger in
            let drop = try DropID("sealed-\(UInt32.random(in: 0...UInt32.max))")
            try await store.createDrop(DropConfig(id: drop, units: 1, opensAt: SystemClock().now()))
            let requests = try ["first", "second"].map {
                ClaimRequest(drop: drop, user: try UserID($0), idempotencyKey: try IdempotencyKey("key-\($0)"))
            }
            var outcomes: [ClaimOutcome] = []
            for request in requests { outcomes.append(try await store.claim(request)) }
            guard case .held = outcomes[0].decision, case .waitlisted = outcomes[1].decision else {
                Issue.record("expected held then waitlisted, got \(outcomes.map(\.decision))")
                return
            }
            let tokens = try outcomes.map { try #require($0.holdToken) }

            // Every value kept under the drop: the tokens are in none of them, as hex or bytes.
            let keys = try await client.send(["KEYS", RedisLeaseStore.prefix(drop) + "*"])
            guard case .array(let names) = keys, !names.isEmpty else {
                Issue.record("no keys of the drop in Redis: \(keys)")
                return
            }
            var kept: [[UInt8]] = []
            for name in names.compactMap(\.text) {
                let type = try await client.send(["TYPE", name]).text
                let reply: RESPValue
                switch type {
                case "hash": reply = try await client.send(["HGETALL", name])
                case "string": reply = try await client.send(["GET", name])
                case "list": reply = try await client.send(["LRANGE", name, "0", "-1"])
                case "set": reply = try await client.send(["SMEMBERS", name])
                default: reply = try await client.send(["ZRANGE", name, "0", "-1", "WITHSCORES"])
                }
                kept += Self.values(reply)
            }
            #expect(kept.count > 10)
            // Each claim's hash stays compact in Redis (values up to 64 bytes).
            for claim in outcomes.compactMap(\.claim) {
                let encoding = try await client.send([
                    "OBJECT", "ENCODING", RedisLeaseStore.prefix(drop) + "c:\(claim.number)",
                ])
                #expect(encoding.text == "listpack", "claim \(claim)")
            }
            for token in tokens {
                #expect(!kept.contains { Self.contains($0, Array(token.description.utf8)) })
                #expect(!kept.contains { Self.contains($0, token.bytes) })
            }

            // The same keys again: the first answers, tokens and all.
            for (index, request) in requests.enumerated() {
                let again = try await store.claim(request)
                #expect(again.replayed && again.holdToken == tokens[index])
                #expect(again.decision == outcomes[index].decision)
            }
            // A process with another key: the same outcomes, without the tokens it cannot open.
            var elsewhere = RedisLeaseStore.Configuration()
            elsewhere.holdTokenSeal = .random()
            let other = RedisLeaseStore(client: client, ledger: ledger, configuration: elsewhere)
            for (index, request) in requests.enumerated() {
                let again = try await other.claim(request)
                #expect(again.replayed && again.holdToken == nil)
                #expect(again.claim == outcomes[index].claim)
            }
        }
    }

    /// The bulk strings of a reply, however nested.
    static func values(_ reply: RESPValue) -> [[UInt8]] {
        switch reply {
        case .bulk(let bytes): [bytes]
        case .array(let items): items.flatMap(values)
        default: reply.text.map { [Array($0.utf8)] } ?? []
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        return (0...(haystack.count - needle.count)).contains { start in
            haystack[start..<start + needle.count].elementsEqual(needle)
        }
    }
}
