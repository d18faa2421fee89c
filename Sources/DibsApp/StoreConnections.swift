public import DibsCore
public import DibsPostgres
public import DibsRedis
public import Logging
import PostgresNIO

/// Which lease backend a command works on.
public enum StoreKind: String, Sendable, CaseIterable {
    case memory, postgres, redis
}

/// Opens the store of a kind for the length of `body`: the one place that turns
/// configuration into a running store.
public func withStore<Result: Sendable>(
    _ kind: StoreKind, postgres: PostgresURL?, redis: RedisURL? = nil, connections: Int = 32, logger: Logger,
    _ body: @Sendable (any LeaseStore) async throws -> Result
) async throws -> Result {
    switch kind {
    case .memory:
        return try await body(MemoryLeaseStore())
    case .postgres:
        guard let postgres else {
            throw DibsError(
                .invalidInput, "the postgres store needs a Postgres URL (--postgres-url or DIBS_POSTGRES_URL)")
        }
        return try await PostgresClient.withRunning(postgres, maximumConnections: connections, logger: logger) {
            client in
            try await body(PostgresLeaseStore(client: client, server: postgres, logger: logger))
        }
    case .redis:
        guard let redis, let postgres else {
            throw DibsError(
                .invalidInput,
                "the redis store needs a Redis URL (DIBS_REDIS_URL) and a Postgres URL for its sale ledger")
        }
        return try await PostgresClient.withRunning(postgres, maximumConnections: 8, logger: logger) { pg in
            let client = RedisClient(url: redis, logger: logger)
            defer { client.close() }
            let ledger = PostgresSaleLedger(client: pg, server: postgres, logger: logger)
            return try await body(RedisLeaseStore(client: client, ledger: ledger))
        }
    }
}
