public import DibsCore

/// Idempotency-Keys in Redis, one string per key that expires by itself: `pending|<fp>` while
/// its request runs (for `pendingFor`), then `done|<fp>|<status>|<body>` (for `keepFor`).
/// Plain `SET … NX PX` and `GET`, not scripts: a claim's answer is written on the hot path.
public struct RedisIdempotencyStore: IdempotencyStore {
    static let abandon = Script(
        """
        local v = redis.call('GET', KEYS[1])
        if v and string.sub(v, 1, 8) == 'pending|' then redis.call('DEL', KEYS[1]) end
        return 'ok'
        """)

    private let client: RedisClient

    /// Makes a store on a Redis client.
    public init(client: RedisClient) { self.client = client }

    static func key(_ key: String) -> String { "dibs:idem:{\(key)}" }

    public func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) async throws -> IdempotencyStart {
        let marked = try await client.send([
            "SET", Self.key(key), "pending|" + Hex.encode(fingerprint), "NX", "PX",
            String(pendingFor.wholeMilliseconds),
        ])
        if marked.text == "OK" { return .started }
        // Taken: read what is there. (It may have expired in between: then start afresh.)
        if let found = try await peek(key: key, fingerprint: fingerprint) { return found }
        return try await begin(key: key, fingerprint: fingerprint, pendingFor: pendingFor)
    }

    public func peek(key: String, fingerprint: [UInt8]) async throws -> IdempotencyStart? {
        let reply = try await client.send(["GET", Self.key(key)])
        if case .null = reply { return nil }
        guard case .bulk(let bytes) = reply else {
            throw DibsError(.internalError, "Redis answered \(reply) to an idempotency lookup")
        }
        return try Self.decode(bytes, fingerprint: fingerprint)
    }

    public func complete(key: String, record: IdempotencyRecord, keepFor: Duration) async throws {
        let value =
            "done|\(Hex.encode(record.fingerprint))|\(record.status)|" + String(decoding: record.body, as: UTF8.self)
        _ = try await client.send(["SET", Self.key(key), value, "PX", String(keepFor.wholeMilliseconds)])
    }

    public func abandon(key: String) async throws {
        _ = try await client.eval(Self.abandon, keys: [Self.key(key)], arguments: [])
    }

    static func decode(_ bytes: [UInt8], fingerprint: [UInt8]) throws -> IdempotencyStart {
        let parts = bytes.split(separator: UInt8(ascii: "|"), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 2 else { throw DibsError(.internalError, "a malformed idempotency entry in Redis") }
        guard Array(parts[1]) == Array(Hex.encode(fingerprint).utf8) else { return .mismatch }
        if parts[0].elementsEqual("pending".utf8) { return .inFlight }
        guard parts.count == 4, let status = Int(String(decoding: parts[2], as: UTF8.self)) else {
            throw DibsError(.internalError, "a malformed idempotency entry in Redis")
        }
        return .completed(IdempotencyRecord(fingerprint: fingerprint, status: status, body: Array(parts[3])))
    }
}

/// Token buckets in Redis, shared by every Dibs instance: one script takes a token from
/// every bucket of a request, or from none. Bucket keys share the `{rate}` hash tag so the
/// script may touch them together on Redis Cluster.
public struct RedisRateLimiter: RateLimiter {
    static let admit = Script(
        """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local left = {}
        for i, k in ipairs(KEYS) do
          local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
          local h = redis.call('HMGET', k, 't', 'u')
          local tokens, updated = tonumber(h[1]) or burst, tonumber(h[2]) or now
          tokens = math.min(burst, tokens + math.max(0, now - updated) / 1000 * rate)
          if tokens < 1 then return {i, math.ceil((1 - tokens) / rate * 1000)} end
          left[i] = tokens - 1
        end
        for i, k in ipairs(KEYS) do
          local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
          redis.call('HSET', k, 't', tostring(left[i]), 'u', tostring(now))
          redis.call('PEXPIRE', k, math.ceil(burst / rate * 1000) + 1000)
        end
        return {0, 0}
        """)

    private let client: RedisClient

    /// Makes a limiter on a Redis client.
    public init(client: RedisClient) { self.client = client }

    public func admit(_ buckets: [RateBucket]) async throws -> RateDecision {
        guard !buckets.isEmpty else { return .allowed }
        let reply = try await client.eval(Self.admit, keys: Self.keys(buckets), arguments: Self.arguments(buckets))
        return try Self.decision(reply, buckets)
    }

    /// The script's one round trip, answered on the event loop of the Redis connection (the
    /// caller's, when it runs on one), with no task.
    public func startAdmit(
        _ buckets: [RateBucket], then done: @escaping @Sendable (Result<RateDecision, any Error>) -> Void
    ) {
        guard !buckets.isEmpty else { return done(.success(.allowed)) }
        client.startEval(Self.admit, keys: Self.keys(buckets), arguments: Self.arguments(buckets)) { reply in
            done(reply.mapError { $0 }.flatMap { reply in Result { try Self.decision(reply, buckets) } })
        }
    }

    private static func keys(_ buckets: [RateBucket]) -> [String] { buckets.map { "dibs:{rate}:\($0.key)" } }

    private static func arguments(_ buckets: [RateBucket]) -> [String] {
        var arguments: [String] = []
        arguments.reserveCapacity(buckets.count * 2)
        for bucket in buckets {
            arguments.append(String(bucket.limit.perSecond))
            arguments.append(String(bucket.limit.burst))
        }
        return arguments
    }

    private static func decision(_ reply: RESPValue, _ buckets: [RateBucket]) throws(DibsError) -> RateDecision {
        guard case .array(let parts) = reply, parts.count == 2, let index = parts[0].integer,
            let wait = parts[1].integer
        else { throw DibsError(.internalError, "Redis answered \(reply) to a rate-limit check") }
        if index == 0 { return .allowed }
        return .limited(key: buckets[Int(index) - 1].key, retryAfter: .milliseconds(wait))
    }
}
