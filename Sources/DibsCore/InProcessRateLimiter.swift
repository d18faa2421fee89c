import Synchronization

/// A token bucket's state: tokens left when last touched.
struct TokenBucket: Sendable {
    var tokens: Double
    var updatedAt: Timestamp

    /// Refills for the time since the last touch, then takes a token if there is one;
    /// otherwise says how long until there is.
    mutating func take(limit: RateLimit, now: Timestamp) -> Duration? {
        let elapsed = Double(max(0, now.milliseconds - updatedAt.milliseconds)) / 1000
        tokens = min(Double(limit.burst), tokens + elapsed * limit.perSecond)
        updatedAt = now
        if tokens >= 1 { return nil }
        let wait = (1 - tokens) / limit.perSecond
        return .milliseconds(Int64((wait * 1000).rounded(.up)))
    }
}

/// Token buckets in this process: for a server whose drops are on Postgres only, where
/// each instance keeps its own (so N instances allow up to N times the rate).
public final class InProcessRateLimiter: RateLimiter {
    private struct State {
        var buckets: [String: TokenBucket] = [:]
        var lastSweep = Timestamp(milliseconds: 0)
    }

    private let clock: any DibsClock
    private let state = Mutex(State())

    /// Makes a limiter that reads the time from `clock`.
    public init(clock: any DibsClock = SystemClock()) {
        self.clock = clock
    }

    public func admit(_ buckets: [RateBucket]) -> RateDecision {
        let now = clock.now()
        return state.withLock { state in
            sweep(&state, now: now)
            // Check every bucket before taking from any, so a refused request costs nothing.
            var updated: [TokenBucket] = []
            for bucket in buckets {
                var current =
                    state.buckets[bucket.key] ?? TokenBucket(tokens: Double(bucket.limit.burst), updatedAt: now)
                if let wait = current.take(limit: bucket.limit, now: now) {
                    return .limited(key: bucket.key, retryAfter: wait)
                }
                updated.append(current)
            }
            for (bucket, var current) in zip(buckets, updated) {
                current.tokens -= 1
                state.buckets[bucket.key] = current
            }
            return .allowed
        }
    }

    public func admitWithoutIO(_ buckets: [RateBucket]) -> RateDecision? { admit(buckets) }

    /// Drops buckets untouched for a minute (full again by then for any sane limit), so
    /// a stream of new shoppers or addresses does not grow memory without end.
    private func sweep(_ state: inout State, now: Timestamp) {
        guard now.milliseconds - state.lastSweep.milliseconds > 60_000 else { return }
        state.lastSweep = now
        state.buckets = state.buckets.filter { now.milliseconds - $0.value.updatedAt.milliseconds < 60_000 }
    }
}
