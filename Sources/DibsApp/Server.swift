public import DibsCore
public import DibsHTTP
public import DibsPostgres
public import DibsRedis
import Hummingbird
public import Logging
import PostgresNIO
import ServiceLifecycle

/// Everything `dibs serve` is told: where to listen, which stores, and the service settings.
public struct ServeConfiguration: Sendable {
    /// Where the stores are.
    public enum Stores: Sendable {
        /// Everything in this process: drops, keys and answers are gone when it ends.
        case memory
        /// Postgres (drops, keys, sales, Postgres drops), and Redis for Redis drops, shared
        /// idempotency and rate limits when given.
        case servers(postgres: PostgresURL, redis: RedisURL?)
    }

    public var host = "127.0.0.1"
    public var port = 8080
    public var stores: Stores
    public var settings: ServiceSettings
    public var postgresConnections = 32
    public var redisConnections = 4
    /// How often each known drop's gauges (leases held, waitlist length) are refreshed.
    public var gaugeInterval: Duration = .seconds(5)

    /// A configuration with the default settings for `stores`.
    public init(stores: Stores) {
        self.stores = stores
        switch stores {
        case .memory: settings = ServiceSettings(defaultBackend: "memory")
        case .servers(_, let redis): settings = ServiceSettings(defaultBackend: redis == nil ? "postgres" : "redis")
        }
    }
}

/// Runs `dibs serve` until SIGTERM or SIGINT (or the task is cancelled): stores, service and
/// HTTP server in one `ServiceGroup`, which on a signal stops accepting connections, lets
/// in-flight requests finish, then closes the stores.
///
/// - Parameters:
///   - memoryKeys: for the memory store, the API keys to start with (it has no `dibs keys`).
///   - onListening: called with the bound port once the server accepts connections.
public func runServer(
    _ configuration: ServeConfiguration, memoryKeys: [APIKeyRecord] = [], logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void = { _ in }
) async throws {
    switch configuration.stores {
    case .memory:
        let keys = MemoryAPIKeyStore()
        for key in memoryKeys { try keys.insert(key) }
        let service = DibsService(
            stores: [MemoryLeaseStore()], directory: MemoryDropDirectory(), keys: keys,
            idempotency: MemoryIdempotencyStore(), limiter: InProcessRateLimiter(), settings: configuration.settings,
            metrics: DibsMetrics(), logger: logger)
        try await serve(service, configuration, extra: [], logger: logger, onListening: onListening)
    case .servers(let postgresURL, let redisURL):
        var pg = postgresURL.clientConfiguration()
        pg.options.maximumConnections = configuration.postgresConnections
        pg.options.connectTimeout = .seconds(5)
        var background = logger
        background.logLevel = .error
        let postgres = PostgresClient(configuration: pg, backgroundLogger: background)
        var stores: [any LeaseStore] = [PostgresLeaseStore(client: postgres, server: postgresURL, logger: logger)]
        let postgresAnswers = PostgresIdempotencyStore(client: postgres, server: postgresURL, logger: logger)
        var idempotency: any IdempotencyStore = postgresAnswers
        var extra: [any Service] = [postgres]
        var limiter: any RateLimiter = InProcessRateLimiter()
        var redis: RedisClient?
        if let redisURL {
            var options = RedisClient.Configuration()
            options.connections = configuration.redisConnections
            let client = RedisClient(url: redisURL, configuration: options, logger: logger)
            redis = client
            let ledger = PostgresSaleLedger(client: postgres, server: postgresURL, logger: logger)
            var storeOptions = RedisLeaseStore.Configuration()
            storeOptions.holdTokenSeal = configuration.settings.holdTokenSeal
            stores.append(RedisLeaseStore(client: client, ledger: ledger, configuration: storeOptions))
            idempotency = RedisIdempotencyStore(client: client)
            limiter = RedisRateLimiter(client: client)
        }
        defer { redis?.close() }
        if let client = redis { warnUnlessDurable(client, logger: logger) }
        // Answers kept in Postgres are deleted once their time is up (Redis expires its own).
        if redis == nil { extra.append(AnswerPurger(store: postgresAnswers, interval: .seconds(600), logger: logger)) }
        let service = DibsService(
            stores: stores, directory: PostgresDropDirectory(client: postgres, server: postgresURL, logger: logger),
            keys: PostgresAPIKeyStore(client: postgres, server: postgresURL, logger: logger),
            idempotency: idempotency, limiter: limiter, settings: configuration.settings, metrics: DibsMetrics(),
            logger: logger)
        try await serve(service, configuration, extra: extra, logger: logger, onListening: onListening)
    }
}

private func serve(
    _ service: DibsService, _ configuration: ServeConfiguration, extra: [any Service], logger: Logger,
    onListening: @escaping @Sendable (Int) async -> Void
) async throws {
    let router = DibsHTTPServer.router(service: service, settings: configuration.settings)
    let app = Application(
        router: router, server: DibsHTTPServer.server(service: service, settings: configuration.settings),
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port), serverName: DibsHTTPServer.serverName,
            backlog: 4096),
        onServerRunning: { channel in await onListening(channel.localAddress?.port ?? configuration.port) },
        logger: logger)
    let sampler = GaugeSampler(service: service, interval: configuration.gaugeInterval)
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            // Shut down in reverse order: the HTTP server first (it stops accepting and
            // finishes requests in flight), then the sampler, then the stores' clients.
            services: extra.map { .init(service: $0) } + [
                .init(service: sampler, successTerminationBehavior: .ignore), .init(service: app),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
    try await group.run()
}

/// Says at start, once, whether Redis would keep the Redis drops through a restart
/// (`RedisPersistence`): a warning when it would not, a notice when its settings cannot be read.
private func warnUnlessDurable(_ client: RedisClient, logger: Logger) {
    Task {
        switch await RedisPersistence.check(client) {
        case .durable: break
        case .atRisk(let warning): logger.warning("\(warning)")
        case .unknown(let note): logger.notice("\(note)")
        }
    }
}

/// Deletes the idempotency answers kept in Postgres past their time, every `interval`.
struct AnswerPurger: Service {
    let store: PostgresIdempotencyStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                do {
                    let purged = try await store.purgeExpired()
                    if purged > 0 { logger.debug("purged idempotency answers", metadata: ["count": "\(purged)"]) }
                } catch {
                    logger.warning("purging idempotency answers failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

/// Refreshes the drop gauges of `/metrics` every `interval`.
struct GaugeSampler: Service {
    let service: DibsService
    let interval: Duration

    func run() async throws {
        // Ends at once on graceful shutdown (the sleep is cancelled) without failing the group.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await service.sampleDropGauges()
            }
        }
    }
}

/// Runs `body` with the API key store of the Postgres at `url`.
public func withKeyStore<Result: Sendable>(
    _ url: PostgresURL, logger: Logger = Logger(label: "dibs.keys"),
    _ body: @Sendable (any APIKeyStore) async throws -> Result
) async throws -> Result {
    try await PostgresClient.withRunning(url, maximumConnections: 2, logger: logger) { client in
        try await body(PostgresAPIKeyStore(client: client, server: url, logger: logger))
    }
}
