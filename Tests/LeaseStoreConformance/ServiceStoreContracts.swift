public import DibsCore

/// The contracts of the HTTP service's own stores (idempotency answers, rate limits, API
/// keys), written once and run against the in-process versions, Redis and Postgres.
public enum ServiceStoreContracts {
    /// `begin` marks a key in flight once; the same fingerprint is then in flight, another one
    /// a mismatch; `complete` keeps the answer for replay; `abandon` frees an in-flight key;
    /// `peek` sees what `begin` would, without marking.
    public static func verifyIdempotency(_ store: any IdempotencyStore) async throws {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let key = "contract-\(tag)"
        let fingerprint: [UInt8] = Array("first request".utf8)
        let other: [UInt8] = Array("another request".utf8)
        try expect(try await store.peek(key: key, fingerprint: fingerprint) == nil, "a new key peeked as known")
        try expect(
            try await store.begin(key: key, fingerprint: fingerprint, pendingFor: .seconds(30)) == .started,
            "a new key did not start")
        let again = try await store.begin(key: key, fingerprint: fingerprint, pendingFor: .seconds(30))
        try expect(again == .inFlight, "the same request while in flight was \(again)")
        let mismatch = try await store.begin(key: key, fingerprint: other, pendingFor: .seconds(30))
        try expect(mismatch == .mismatch, "another request under an in-flight key was \(mismatch)")
        try expect(
            try await store.peek(key: key, fingerprint: fingerprint) == .inFlight, "peek did not see the key in flight")

        let record = IdempotencyRecord(fingerprint: fingerprint, status: 201, body: Array(#"{"claim":"d.1"}"#.utf8))
        try await store.complete(key: key, record: record, keepFor: .seconds(60))
        let replay = try await store.begin(key: key, fingerprint: fingerprint, pendingFor: .seconds(30))
        try expect(replay == .completed(record), "a completed key answered \(replay)")
        try expect(
            try await store.peek(key: key, fingerprint: fingerprint) == .completed(record), "peek missed the answer")
        try expect(
            try await store.begin(key: key, fingerprint: other, pendingFor: .seconds(30)) == .mismatch,
            "another request under a completed key was not a mismatch")

        let abandoned = "contract-abandoned-\(tag)"
        _ = try await store.begin(key: abandoned, fingerprint: fingerprint, pendingFor: .seconds(30))
        try await store.abandon(key: abandoned)
        try expect(
            try await store.begin(key: abandoned, fingerprint: other, pendingFor: .seconds(30)) == .started,
            "an abandoned key did not start afresh")
        // Abandoning a completed key keeps its answer.
        try await store.abandon(key: key)
        try expect(
            try await store.peek(key: key, fingerprint: fingerprint) == .completed(record),
            "abandon removed a completed answer")
    }

    /// A bucket gives its burst at once, then refuses with a wait; buckets are independent;
    /// a request takes from all its buckets or from none.
    /// With `startsAdmissions`, every token is asked for as the HTTP server's event loop asks
    /// (`startAdmit`).
    public static func verifyRateLimiter(_ limiter: any RateLimiter, startsAdmissions: Bool = false) async throws {
        @Sendable func admit(_ buckets: [RateBucket]) async throws -> RateDecision {
            guard startsAdmissions else { return try await limiter.admit(buckets) }
            return try await withCheckedThrowingContinuation { decided in
                limiter.startAdmit(buckets) { decided.resume(with: $0) }
            }
        }
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let slow = RateLimit(perSecond: 0.5, burst: 3)!
        let a = RateBucket(key: "user:a-\(tag)", limit: slow)
        let b = RateBucket(key: "user:b-\(tag)", limit: slow)
        for attempt in 1...3 {
            let decision = try await admit([a])
            try expect(decision == .allowed, "token \(attempt) of a burst of 3 was refused: \(decision)")
        }
        guard case .limited(let key, let wait) = try await admit([a]) else {
            throw ConformanceFailure(description: "a fourth token of a burst of 3 was given")
        }
        try expect(key == a.key, "the refusal named \(key), not \(a.key)")
        try expect(wait > .zero && wait <= .seconds(2), "the wait for a token at 0.5/s was \(wait)")
        try expect(try await admit([b]) == .allowed, "an untouched bucket refused")
        // [b, a]: a is empty, so b must not lose a token either.
        guard case .limited = try await admit([b, a]) else {
            throw ConformanceFailure(description: "a request was admitted with one of its buckets empty")
        }
        try expect(try await admit([b]) == .allowed, "b lost a token to a refused request")
        try expect(try await admit([b]) == .allowed, "b's third token was refused")
    }

    /// Keys are found by id, revoked for good, and listed newest first.
    public static func verifyAPIKeys(_ store: any APIKeyStore) async throws {
        let first = APIKey.generate()
        let second = APIKey.generate()
        let now = SystemClock().now()
        try await store.insert(first.record(name: "contract-first", scope: .storefront, createdAt: now))
        try await store.insert(
            second.record(name: "contract-second", scope: .operator, createdAt: now.adding(.seconds(1))))
        let found = try await store.find(id: first.id)
        try expect(found.map(first.matches) == true, "the stored record does not match its key")
        try expect(
            found?.scope == .storefront && found?.revokedAt == nil,
            "the record came back as \(String(describing: found))")
        try expect(try await store.find(id: "000000000000") == nil, "an unknown id was found")
        try expect(try await store.revoke(id: first.id, at: now), "revoking a key answered not found")
        try expect(try await store.find(id: first.id)?.revokedAt != nil, "a revoked key is not marked revoked")
        try expect(try await !store.revoke(id: "000000000000", at: now), "revoking an unknown id answered found")
        let listed = try await store.list().map(\.id)
        guard let a = listed.firstIndex(of: first.id), let b = listed.firstIndex(of: second.id) else {
            throw ConformanceFailure(description: "the list lacks the keys just made")
        }
        try expect(b < a, "the list is not newest first")
    }
}
