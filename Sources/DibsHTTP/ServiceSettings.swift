public import DibsCore

/// The HTTP service's settings: limits, rate limits and how long answers are kept. Those an
/// operator tunes have a `dibs serve` flag and a `DIBS_*` variable; the caches' lifetimes
/// are fixed here (tests shorten them).
public struct ServiceSettings: Sendable {
    /// The largest request body read; a larger one is answered `413`.
    public var maximumBodyBytes = 4096
    /// How long an Idempotency-Key's answer is replayed (at least 24 h).
    public var idempotencyKeepFor: Duration = .seconds(25 * 3600)
    /// How long a key stays "in flight" if its process dies mid-request.
    public var idempotencyPendingFor: Duration = .seconds(30)
    /// Token buckets; `nil` lifts that limit (a staging copy load-tested from one host).
    public var perKeyLimit = RateLimit(perSecond: 10_000, burst: 20_000)
    public var perShopperLimit = RateLimit(perSecond: 2, burst: 5)
    /// Per client address, for requests without a valid API key (guessing keys, junk):
    /// authenticated callers are limited per key and per shopper.
    public var perIPLimit = RateLimit(perSecond: 500, burst: 1000)
    /// How long a looked-up API key (and a revocation) is trusted before it is read again.
    public var apiKeyCacheFor: Duration = .seconds(5)
    /// How long a drop's backend and cancelled flag are trusted before they are read again.
    public var dropCacheFor: Duration = .seconds(2)
    /// How long `GET /v1/drops/{drop}` reuses the counts of a store whose counting is costly
    /// (Postgres counts a drop's free and held units: ~0.15 s for 1,000,000 here); storefronts
    /// polling a drop then cost one count a drop a second per server, not one per request.
    public var costlyCountsFreshFor: Duration = .seconds(1)
    /// Seals the hold tokens kept for replays: with each claim in Redis, and in the answers
    /// this service keeps for claims on Postgres. Every instance serving the same stores
    /// needs the same key (`--hold-token-key`); the default is this process's own, so after a
    /// restart a replay comes without its token.
    public var holdTokenSeal = HoldTokenSeal.random()
    /// How long a connection may sit with no request in progress (or part-way through a head),
    /// or take to send a request's body after its head, before it is closed; `nil` keeps it
    /// open for good. A request being answered is never cut off. Without it, clients that
    /// connect and go quiet (or send a request a byte at a time) would hold their connections
    /// until the server ran out.
    public var idleTimeout: Duration? = .seconds(60)
    /// The backend of a drop created without one.
    public var defaultBackend: String

    /// The defaults, with new drops going to `defaultBackend`.
    public init(defaultBackend: String) {
        self.defaultBackend = defaultBackend
    }
}
