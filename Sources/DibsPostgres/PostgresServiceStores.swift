public import DibsCore
public import Logging
public import PostgresNIO

/// What every Postgres-backed part holds: the client, the logger for its queries, and the
/// mapping of PostgresNIO's errors to `DibsError`s that name the server.
struct PostgresAccess: Sendable {
    let client: PostgresClient
    let logger: Logger
    let errors: PostgresErrorMapper

    init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        self.client = client
        self.logger = logger
        self.errors = PostgresErrorMapper(server: "Postgres at \(server.host):\(server.port)")
    }
}

/// The drop directory in `dibs_drops`, which both lease stores write when they create a drop.
public struct PostgresDropDirectory: DropDirectory {
    private let db: PostgresAccess

    /// Makes a directory on a client whose `run()` the caller keeps going.
    public init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        db = PostgresAccess(client: client, server: server, logger: logger)
    }

    public func locate(_ drop: DropID) async throws -> DropLocation? {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                "SELECT backend, cancelled_at IS NOT NULL FROM dibs_drops WHERE id = \(drop.rawValue)",
                logger: db.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (backend, cancelled) = try row.decode((String, Bool).self)
            return DropLocation(backend: backend, cancelled: cancelled)
        }
    }

    /// The stores wrote the row already.
    public func didCreate(_ drop: DropID, backend: String) {}

    public func cancel(_ drop: DropID) async throws {
        _ = try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                UPDATE dibs_drops SET cancelled_at = coalesce(cancelled_at, now()) WHERE id = \(drop.rawValue)
                RETURNING id
                """, logger: db.logger
            ).collect()
            if rows.isEmpty { throw DibsError(.unknownDrop, "no drop \(drop)") }
        }
    }
}

/// API keys in `dibs_api_keys`: the id, scope, salt and hash, never the secret.
public struct PostgresAPIKeyStore: APIKeyStore {
    private let db: PostgresAccess

    /// Makes a key store on a client whose `run()` the caller keeps going.
    public init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        db = PostgresAccess(client: client, server: server, logger: logger)
    }

    public func insert(_ record: APIKeyRecord) async throws {
        _ = try await db.errors.mapping {
            try await db.client.query(
                """
                INSERT INTO dibs_api_keys (id, name, scope, salt, hash, created_at)
                VALUES (\(record.id), \(record.name), \(record.scope.rawValue), \(ByteBuffer(bytes: record.salt)),
                        \(ByteBuffer(bytes: record.hash)), to_timestamp(\(record.createdAt.milliseconds) / 1000.0))
                """, logger: db.logger
            ).collect()
        }
    }

    public func find(id: String) async throws -> APIKeyRecord? {
        try await select("WHERE id = \(id)").first
    }

    public func revoke(id: String, at time: Timestamp) async throws -> Bool {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                UPDATE dibs_api_keys SET revoked_at = coalesce(revoked_at, to_timestamp(\(time.milliseconds) / 1000.0))
                 WHERE id = \(id) RETURNING id
                """, logger: db.logger
            ).collect()
            return !rows.isEmpty
        }
    }

    public func list() async throws -> [APIKeyRecord] {
        try await select("ORDER BY created_at DESC")
    }

    private func select(_ filter: PostgresQuery) async throws -> [APIKeyRecord] {
        try await db.errors.mapping {
            var query: PostgresQuery =
                "SELECT id, name, scope, salt, hash, dibs_ms(created_at), dibs_ms(revoked_at) FROM dibs_api_keys "
            query.sql += filter.sql
            query.binds = filter.binds
            var records: [APIKeyRecord] = []
            let rows = try await db.client.query(query, logger: db.logger)
            for try await (id, name, scope, salt, hash, created, revoked) in rows.decode(
                (String, String, String, ByteBuffer, ByteBuffer, Int64, Int64?).self)
            {
                guard let scope = APIScope(rawValue: scope) else {
                    throw DibsError(.internalError, "API key \(id) has an unknown scope \(scope)")
                }
                records.append(
                    APIKeyRecord(
                        id: id, name: name, scope: scope, salt: Array(buffer: salt), hash: Array(buffer: hash),
                        createdAt: Timestamp(milliseconds: created),
                        revokedAt: revoked.map { Timestamp(milliseconds: $0) }))
            }
            return records
        }
    }
}

/// Idempotency-Keys in `dibs_idempotency`, for a server without Redis. Expired rows are
/// overwritten in place when their key comes back, and deleted by `purgeExpired`.
public struct PostgresIdempotencyStore: IdempotencyStore {
    private let db: PostgresAccess

    /// Makes a store on a client whose `run()` the caller keeps going.
    public init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        db = PostgresAccess(client: client, server: server, logger: logger)
    }

    public func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) async throws -> IdempotencyStart {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                SELECT outcome, fingerprint, status, body
                  FROM dibs_idempotency_begin(\(key), \(ByteBuffer(bytes: fingerprint)), \(pendingFor.wholeMilliseconds))
                """, logger: db.logger
            ).collect()
            guard let row = rows.first else { throw DibsError(.internalError, "idempotency_begin gave no row") }
            let (outcome, first, status, body) = try row.decode((String, ByteBuffer?, Int?, ByteBuffer?).self)
            switch outcome {
            case "started": return .started
            case "pending": return first.map(Array.init(buffer:)) == fingerprint ? .inFlight : .mismatch
            default:
                let record = IdempotencyRecord(
                    fingerprint: first.map(Array.init(buffer:)) ?? [], status: status ?? 500,
                    body: body.map(Array.init(buffer:)) ?? [])
                return record.fingerprint == fingerprint ? .completed(record) : .mismatch
            }
        }
    }

    public func peek(key: String, fingerprint: [UInt8]) async throws -> IdempotencyStart? {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                SELECT state, fingerprint, status, body FROM dibs_idempotency
                 WHERE key = \(key) AND expires_at > clock_timestamp()
                """, logger: db.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (state, first, status, body) = try row.decode((String, ByteBuffer, Int?, ByteBuffer?).self)
            guard Array(buffer: first) == fingerprint else { return .mismatch }
            if state == "pending" { return .inFlight }
            return .completed(
                IdempotencyRecord(
                    fingerprint: fingerprint, status: status ?? 500, body: body.map(Array.init(buffer:)) ?? []))
        }
    }

    public func complete(key: String, record: IdempotencyRecord, keepFor: Duration) async throws {
        _ = try await db.errors.mapping {
            try await db.client.query(
                """
                UPDATE dibs_idempotency
                   SET state = 'done', status = \(record.status), body = \(ByteBuffer(bytes: record.body)),
                       expires_at = clock_timestamp() + \(keepFor.wholeMilliseconds) * interval '1 millisecond'
                 WHERE key = \(key)
                """, logger: db.logger
            ).collect()
        }
    }

    public func abandon(key: String) async throws {
        _ = try await db.errors.mapping {
            try await db.client.query(
                "DELETE FROM dibs_idempotency WHERE key = \(key) AND state = 'pending'", logger: db.logger
            )
            .collect()
        }
    }

    /// Deletes answers kept past their time; returns how many.
    public func purgeExpired() async throws -> Int {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                "DELETE FROM dibs_idempotency WHERE expires_at < clock_timestamp() RETURNING 1", logger: db.logger
            ).collect()
            return rows.count
        }
    }
}
