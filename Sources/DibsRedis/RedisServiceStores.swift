public import DibsCore

/// Idempotency-Keys in Redis, one hash per key (`st` pending|done, `fp`, `status`, `body`)
/// that expires by itself: the in-flight mark after `pendingFor`, the answer after `keepFor`.
public struct RedisIdempotencyStore: IdempotencyStore {
    static let begin = Script(
        """
        local h = redis.call('HMGET', KEYS[1], 'st', 'fp', 'status', 'body')
        if not h[1] then
          redis.call('HSET', KEYS[1], 'st', 'pending', 'fp', ARGV[1])
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
          return {'started'}
        end
        return {h[1], h[2] or '', h[3] or '', h[4] or ''}
        """)
    static let complete = Script(
        """
        redis.call('HSET', KEYS[1], 'st', 'done', 'fp', ARGV[1], 'status', ARGV[2], 'body', ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return 'ok'
        """)
    static let abandon = Script(
        """
        if redis.call('HGET', KEYS[1], 'st') == 'pending' then redis.call('DEL', KEYS[1]) end
        return 'ok'
        """)

    private let client: RedisClient

    /// Makes a store on a Redis client.
    public init(client: RedisClient) { self.client = client }

    static func key(_ key: String) -> String { "dibs:idem:{\(key)}" }

    public func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) async throws -> IdempotencyStart {
        let reply = try await client.eval(
            Self.begin, keys: [Self.key(key)],
            arguments: [Hex.encode(fingerprint), String(pendingFor.wholeMilliseconds)])
        guard case .array(let parts) = reply, let state = parts.first?.text else {
            throw DibsError(.internalError, "Redis answered \(reply) to an idempotency check")
        }
        if state == "started" { return .started }
        guard parts.count == 4 else {
            throw DibsError(.internalError, "Redis answered \(reply) to an idempotency check")
        }
        guard parts[1].text == Hex.encode(fingerprint) else { return .mismatch }
        if state == "pending" { return .inFlight }
        let record = IdempotencyRecord(
            fingerprint: fingerprint, status: Int(parts[2].integer ?? 500), body: Array((parts[3].text ?? "").utf8))
        return .completed(record)
    }

    public func peek(key: String, fingerprint: [UInt8]) async throws -> IdempotencyStart? {
        let reply = try await client.send(["HMGET", Self.key(key), "st", "fp", "status", "body"])
        guard case .array(let parts) = reply, parts.count == 4 else {
            throw DibsError(.internalError, "Redis answered \(reply) to an idempotency lookup")
        }
        guard let state = parts[0].text else { return nil }
        guard parts[1].text == Hex.encode(fingerprint) else { return .mismatch }
        if state == "pending" { return .inFlight }
        return .completed(
            IdempotencyRecord(
                fingerprint: fingerprint, status: Int(parts[2].integer ?? 500), body: Array((parts[3].text ?? "").utf8))
        )
    }

    public func complete(key: String, record: IdempotencyRecord, keepFor: Duration) async throws {
        _ = try await client.eval(
            Self.complete, keys: [Self.key(key)],
            arguments: [
                Hex.encode(record.fingerprint), String(record.status), String(decoding: record.body, as: UTF8.self),
                String(keepFor.wholeMilliseconds),
            ])
    }

    public func abandon(key: String) async throws {
        _ = try await client.eval(Self.abandon, keys: [Self.key(key)], arguments: [])
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
        var arguments: [String] = []
        arguments.reserveCapacity(buckets.count * 2)
        for bucket in buckets {
            arguments.append(String(bucket.limit.perSecond))
            arguments.append(String(bucket.limit.burst))
        }
        let reply = try await client.eval(
            Self.admit, keys: buckets.map { "dibs:{rate}:\($0.key)" }, arguments: arguments)
        guard case .array(let parts) = reply, parts.count == 2, let index = parts[0].integer,
            let wait = parts[1].integer
        else { throw DibsError(.internalError, "Redis answered \(reply) to a rate-limit check") }
        if index == 0 { return .allowed }
        return .limited(key: buckets[Int(index) - 1].key, retryAfter: .milliseconds(wait))
    }
}
