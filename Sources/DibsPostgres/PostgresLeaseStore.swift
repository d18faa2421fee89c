public import DibsCore
public import Logging
public import PostgresNIO
import Synchronization

/// The Postgres lease store: one row per unit, leased with `FOR UPDATE SKIP LOCKED`.
///
/// Every operation is one call of a function in `schema/002_lease_functions.sql`, run as a
/// prepared statement, so it is atomic and costs one round trip. Time is the database's
/// (`clock_timestamp()`), not this process's: several Dibs processes share one clock.
public struct PostgresLeaseStore: LeaseStore {
    public var backendName: String { "postgres" }
    /// A claim's transaction may have read the units before the last sale committed and
    /// commit "limit reached" after it: longer than any claim statement runs.
    public var soldAnswersSettle: Duration { .seconds(10) }
    /// Only the token's hash is stored: the HTTP service keeps the answer with its token.
    public var keepsHoldTokens: Bool { false }

    /// Settings of the store.
    public struct Configuration: Sendable {
        /// How long a call waits for a pooled connection before the watchdog checks whether
        /// Postgres accepts connections at all. If it does not, the call fails with
        /// `.storeUnavailable` (nothing was sent); if it does, the pool is only busy and the
        /// call waits on, up to `maximumConnectionWait`.
        public var connectionWait: Duration = .seconds(1)
        /// The longest a call waits for a connection while Postgres accepts connections.
        public var maximumConnectionWait: Duration = .seconds(30)

        /// The defaults.
        public init() {}
    }

    private let client: PostgresClient
    private let logger: Logger
    private let errors: PostgresErrorMapper
    private let configuration: Configuration
    private let server: PostgresURL
    private let watchdog: ConnectionWatchdog
    private let ledger: PostgresSaleLedger

    /// Makes a store on a client whose `run()` the caller keeps going. Statement timeouts
    /// are the server's `statement_timeout` (see `PostgresURL.statementTimeout`).
    ///
    /// - Parameter server: where Postgres is, to tell a down server from a busy pool and to
    ///   name it in errors.
    public init(
        client: PostgresClient, server: PostgresURL, logger: Logger, configuration: Configuration = Configuration()
    ) {
        self.client = client
        self.logger = logger
        self.server = server
        self.ledger = PostgresSaleLedger(client: client, server: server, logger: logger)
        self.watchdog = ConnectionWatchdog(
            health: ServerHealth(host: server.host, port: server.port), wait: configuration.connectionWait,
            longest: configuration.maximumConnectionWait, name: "Postgres at \(server.host):\(server.port)")
        self.errors = PostgresErrorMapper(server: "Postgres at \(server.host):\(server.port)")
        self.configuration = configuration
    }

    public func createDrop(_ config: DropConfig) async throws {
        // The drop's row and its unit rows, made in one statement by the ledger.
        if case .exists(let backend) = try await ledger.registerDrop(config, backend: "postgres") {
            throw DibsError(.dropExists, "drop \(config.id) exists already, on \(backend)")
        }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimOutcome {
        let token = HoldToken.random()
        let row = try await single(
            LeaseStatements.Claim(
                drop: request.drop.rawValue, user: request.user.rawValue, key: request.idempotencyKey.rawValue,
                tokenHash: token.hash.description))
        let answer = StoreAnswer(row, drop: request.drop)
        if answer.code == "idempotency-key-reused" {
            throw DibsError(
                .idempotencyKeyReused,
                "Idempotency-Key \(request.idempotencyKey) was used for another shopper's claim")
        }
        try answer.check(drop: request.drop)
        return try answer.outcome(token: token)
    }

    public func confirm(_ request: ConfirmRequest) async throws -> Sale {
        let row = try await single(
            LeaseStatements.Confirm(
                drop: request.claim.drop.rawValue, claim: request.claim.number,
                tokenHash: request.holdToken.hash.description, fence: request.fence.value, orderRef: request.orderRef))
        let answer = StoreAnswer(row, drop: request.claim.drop)
        try answer.check(claim: request.claim)
        guard let unit = answer.unit, let fence = answer.fence else {
            throw DibsError(.internalError, "confirm answered without a unit")
        }
        return Sale(drop: request.claim.drop, unit: unit, claim: request.claim, fence: fence, orderRef: answer.orderRef)
    }

    public func release(claim: ClaimID, holdToken: HoldToken) async throws -> ClaimStatus {
        let row = try await single(
            LeaseStatements.Release(
                drop: claim.drop.rawValue, claim: claim.number, tokenHash: holdToken.hash.description))
        let answer = StoreAnswer(row, drop: claim.drop)
        try answer.check(claim: claim)
        return try answer.status()
    }

    public func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) async throws -> Lease {
        let row = try await single(
            LeaseStatements.Extend(
                drop: claim.drop.rawValue, claim: claim.number, tokenHash: holdToken.hash.description,
                fence: fence.value)
        )
        let answer = StoreAnswer(row, drop: claim.drop)
        try answer.check(claim: claim)
        guard let unit = answer.unit, let expiresAt = answer.expiresAt else {
            throw DibsError(.internalError, "extend answered without a lease")
        }
        return Lease(drop: claim.drop, unit: unit, claim: claim, fence: fence, expiresAt: expiresAt)
    }

    public func reapExpired(drop: DropID) async throws -> ReapReport {
        let (code, expired, promoted) = try await withConnection { connection in
            let rows = try await connection.query(
                "SELECT code, expired, promoted FROM dibs_reap(\(drop.rawValue))", logger: logger)
            guard let row = try await rows.collect().first else { throw DibsError(.internalError, "reap gave no row") }
            return try row.decode((String, Int?, Int?).self)
        }
        try StoreAnswer.check(code, drop: drop, claim: nil)
        return ReapReport(expired: expired ?? 0, promoted: promoted ?? 0)
    }

    public func status(of claim: ClaimID) async throws -> ClaimStatus {
        let row = try await single(LeaseStatements.Status(drop: claim.drop.rawValue, claim: claim.number))
        let answer = StoreAnswer(row, drop: claim.drop)
        try answer.check(claim: claim)
        return try answer.status()
    }

    public func inspect(drop: DropID) async throws -> DropSnapshot {
        try await withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let counts = try await Self.counts(drop, settlingAll: true, on: connection, logger: logger)
                var leases: [Lease] = []
                let rows = try await connection.query(
                    """
                    SELECT unit, claim_id, fence, dibs_ms(expires_at) FROM dibs_units
                     WHERE drop_id = \(drop.rawValue) AND state = 'held' ORDER BY expires_at, unit
                    """, logger: logger)
                for try await (unit, claim, fence, expires) in rows.decode((Int, Int64, Int64, Int64).self) {
                    leases.append(
                        Lease(
                            drop: drop, unit: unit, claim: ClaimID(drop: drop, number: claim), fence: Fence(fence),
                            expiresAt: Timestamp(milliseconds: expires)))
                }
                return DropSnapshot(
                    drop: drop, units: counts.units, free: counts.free, held: counts.held, sold: counts.sold,
                    waitlisted: counts.waitlisted, leases: leases)
            }
        }
    }

    /// `dibs_counts` counts the drop's free and held units (their index entries).
    public var countingIsCostly: Bool { true }

    /// The counts of `dibs_counts` (it counts the drop's free and held units: O(free + held),
    /// not O(1)), after one batch of settling.
    public func counts(drop: DropID) async throws -> DropSnapshot {
        try await withConnection { connection in
            try await Self.counts(drop, settlingAll: false, on: connection, logger: logger)
        }
    }

    /// `dibs_inspect` settles every lease that ran out first, `dibs_counts` one batch.
    private static func counts(
        _ drop: DropID, settlingAll: Bool, on connection: PostgresConnection, logger: Logger
    ) async throws -> DropSnapshot {
        let query: PostgresQuery =
            settlingAll
            ? "SELECT code, units, free, held, sold, waitlisted FROM dibs_inspect(\(drop.rawValue))"
            : "SELECT code, units, free, held, sold, waitlisted FROM dibs_counts(\(drop.rawValue))"
        let rows = try await connection.query(query, logger: logger).collect()
        guard let row = rows.first else { throw DibsError(.internalError, "inspect gave no row") }
        let (code, units, free, held, sold, waitlisted) = try row.decode((String, Int?, Int?, Int?, Int?, Int?).self)
        try StoreAnswer.check(code, drop: drop, claim: nil)
        return DropSnapshot(
            drop: drop, units: units ?? 0, free: free ?? 0, held: held ?? 0, sold: sold ?? 0,
            waitlisted: waitlisted ?? 0, leases: [])
    }

    /// `dibs_all_sold`, the claim functions' own check: no free and no held unit, a probe of
    /// each partial index (its plan is checked in `QueryPlanTests`), where `counts` counts
    /// every free and held unit. A lease that ran out but is not settled yet counts as held.
    public func everyUnitSold(drop: DropID) async throws -> Bool {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT EXISTS (SELECT 1 FROM dibs_drops WHERE id = \(drop.rawValue)), dibs_all_sold(\(drop.rawValue))
                """, logger: logger
            ).collect()
            guard let row = rows.first else { throw DibsError(.internalError, "the sold-out check gave no row") }
            let (exists, sold) = try row.decode((Bool, Bool).self)
            guard exists else { throw DibsError(.unknownDrop, "no drop \(drop)") }
            return sold
        }
    }

    public func answeredKeys(drop: DropID) async throws -> Set<IdempotencyKey> {
        try await withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT idempotency_key FROM dibs_claims
                 WHERE drop_id = \(drop.rawValue) AND NOT (first_state = 'rejected' AND rejection = 'sold-out')
                """, logger: logger)
            var keys = Set<IdempotencyKey>()
            for try await key in rows.decode(String.self) { keys.insert(try IdempotencyKey(key)) }
            return keys
        }
    }

    public func configuration(of drop: DropID) async throws -> DropConfig {
        try await ledger.dropConfiguration(drop)
    }

    public func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig {
        try await ledger.rescheduleDrop(drop, opensAt: opensAt, closesAt: closesAt)
    }

    private func single<Statement: PostgresPreparedStatement>(_ statement: Statement) async throws -> Statement.Row
    where Statement.Row: Sendable {
        try await withConnection { connection in
            for try await row in try await connection.execute(statement, logger: logger) {
                return row
            }
            throw DibsError(.internalError, "\(Statement.name) returned no row")
        }
    }

    /// Runs `body` on a pooled connection, failing with `.storeUnavailable` when none comes
    /// while Postgres refuses connections, and mapping every PostgresNIO error to a `DibsError`.
    private func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await errors.mapping { try await watchdog.withConnection(client, body) }
    }
}

extension StoreAnswer {
    /// Decodes a `dibs_answer` row.
    init(_ row: LeaseStatements.AnswerRow, drop: DropID) {
        self.init(code: row.0)
        claim = row.1.map { ClaimID(drop: drop, number: $0) }
        user = row.2
        state = row.3
        rejection = row.4
        unit = row.5
        fence = row.6.map(Fence.init)
        expiresAt = row.7.map { Timestamp(milliseconds: $0) }
        position = row.8
        replayed = row.9
        orderRef = row.10
    }
}
