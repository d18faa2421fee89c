/// A token bucket's settings: `perSecond` tokens come back each second, up to `burst`.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    public let perSecond: Double
    public let burst: Int

    /// Makes a limit; `nil` for `0` or negative rates, which mean "no limit".
    public init?(perSecond: Double, burst: Int? = nil) {
        guard perSecond > 0, perSecond.isFinite else { return nil }
        self.perSecond = perSecond
        self.burst = max(1, burst ?? Int(perSecond.rounded(.up)))
    }

    public var description: String { "\(perSecond)/s burst \(burst)" }
}

/// One bucket a request must take a token from: what it counts (`key`) and its limit.
public struct RateBucket: Sendable, Hashable {
    /// What is counted, as `kind:value` (`key:…`, `user:…`, `ip:…`).
    public let key: String
    public let limit: RateLimit

    /// Makes a bucket.
    public init(key: String, limit: RateLimit) {
        self.key = key
        self.limit = limit
    }
}

/// What a rate limiter decided.
public enum RateDecision: Sendable, Hashable {
    case allowed
    /// The bucket `key` is empty; a token comes back after `retryAfter`.
    case limited(key: String, retryAfter: Duration)
}

/// Token buckets shared by every instance (Redis) or kept in one process.
public protocol RateLimiter: Sendable {
    /// Takes one token from every bucket, or none if any of them is empty.
    func admit(_ buckets: [RateBucket]) async throws -> RateDecision
    /// `admit` when it needs no I/O (buckets kept in this process); nil, taking nothing,
    /// when the buckets are elsewhere.
    func admitWithoutIO(_ buckets: [RateBucket]) -> RateDecision?
    /// `admit` without awaiting it: `done` gets the decision or error, once, on whatever
    /// thread the limiter answers on (Redis: the event loop of its connection, the caller's
    /// when it runs on one). Buckets kept in this process answer at once; others in a task.
    func startAdmit(_ buckets: [RateBucket], then done: @escaping @Sendable (Result<RateDecision, any Error>) -> Void)
}

extension RateLimiter {
    public func admitWithoutIO(_ buckets: [RateBucket]) -> RateDecision? { nil }

    public func startAdmit(
        _ buckets: [RateBucket], then done: @escaping @Sendable (Result<RateDecision, any Error>) -> Void
    ) {
        if let decision = admitWithoutIO(buckets) { return done(.success(decision)) }
        Task {
            do { done(.success(try await admit(buckets))) } catch { done(.failure(error)) }
        }
    }
}
