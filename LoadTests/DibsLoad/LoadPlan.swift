/// What a load run does: where, how many, how fast, and the mix of shoppers' behaviour.
public struct LoadPlan: Sendable {
    /// The mix of what shoppers do after their claim.
    public enum Scenario: String, Sendable, CaseIterable {
        /// Claims only: the stampede of a drop opening.
        case stampede
        /// Claims, then winners pay or not: after a random delay most confirm, some release,
        /// some abandon their hold (it expires after the TTL and the unit is claimable again);
        /// some claims are retried with the same Idempotency-Key, and greedy shoppers claim
        /// again past the per-user limit.
        case checkout
    }

    public var host = "127.0.0.1"
    public var port = 8080
    public var operatorKey = ""
    public var storefrontKey = ""
    /// An existing drop to claim on; `nil` creates a fresh one with `units`.
    public var drop: String?
    public var units = 100
    public var backend: String?
    public var holdTTLSeconds = 300
    public var perUserLimit = 1
    /// Claims that may wait for a unit. 0 by default: the checker's model has no waitlist
    /// (a waitlisted claim counts toward the shopper's limit, which the model cannot see).
    public var waitlistCapacity = 0
    /// Distinct shoppers; claim `i` is made by shopper `i % shoppers`.
    public var shoppers = 5_000
    public var claims = 20_000
    /// Keep-alive connections: the concurrency of the closed model, the capacity of the open one.
    public var connections = 256
    /// Claims per second for the open model; `nil` runs the closed model.
    public var rate: Double?
    public var scenario = Scenario.stampede
    /// Checkout: the share of claims retried with the same key, and of shoppers who claim
    /// once more with a new key; winners confirm after up to `confirmDelay`.
    public var retryShare = 0.05
    public var greedyShare = 0.02
    /// Checkout: the share of winners who release their hold, and who abandon it.
    public var releaseShare = 0.1
    public var abandonShare = 0.1
    public var confirmDelay: Duration = .milliseconds(500)
    /// A request with no answer by then counts as unknown (and is resolved afterwards).
    public var requestTimeout: Duration = .seconds(10)
    public var seed: UInt64 = 1
    /// Live progress on standard error.
    public var progress = true

    /// Faults the run inflicts on processes it started itself.
    public enum Fault: String, Sendable, CaseIterable {
        /// kill -9 the server a third of the way through the claims, then start it again.
        case killServer = "kill-server"
        /// Stop the Redis the run started a third of the way through (SIGKILL), start it again
        /// on the same port and data directory after a second.
        case restartRedis = "restart-redis"
        /// SIGSTOP the Postgres the run started a third of the way through, SIGCONT it 3 s later.
        case pausePostgres = "pause-postgres"
        /// One winner in twenty confirms only after its lease expired (TTL + 0.5 s): every such
        /// confirm must be refused.
        case zombieShopper = "zombie-shopper"

        /// Whether the fault needs the run to start `dibs serve` itself.
        public var needsServer: Bool { self != .zombieShopper }
        /// Whether the run also starts its own Redis and Postgres for the server.
        public var needsOwnStores: Bool { self == .restartRedis || self == .pausePostgres }
    }

    public var fault: Fault?
    /// The command line of the `dibs serve` the run starts itself (needed by a fault), with a
    /// fixed `--port`; `host`/`port` are then taken from what it prints.
    public var serveCommand: [String]?

    public init() {}
}
