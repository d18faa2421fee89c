public import DibsCore
public import Logging
public import PostgresNIO

/// The sale ledger in Postgres: `dibs_drops` and `dibs_sales`, whose primary key on
/// `(drop, unit)` refuses a second sale of a unit.
public struct PostgresSaleLedger: SaleLedger {
    private let db: PostgresAccess

    /// Makes a ledger on a client whose `run()` the caller keeps going.
    public init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        db = PostgresAccess(client: client, server: server, logger: logger)
    }

    public func registerDrop(_ config: DropConfig, backend: String) async throws -> DropRegistration {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                SELECT dibs_create_drop(\(config.id.rawValue), \(backend), \(config.units)::int,
                    \(Int(config.holdTTL.wholeMilliseconds))::int, \(config.perUserLimit)::int,
                    \(config.waitlistCapacity)::int, \(config.mode.rawValue), \(config.opensAt.milliseconds),
                    \(config.closesAt?.milliseconds)::bigint)
                """, logger: db.logger
            ).collect()
            if try rows.first?.decode(String.self) == "ok" { return .created }
            let existing = try await db.client.query(
                "SELECT backend FROM dibs_drops WHERE id = \(config.id.rawValue)", logger: db.logger
            ).collect()
            return .exists(backend: try existing.first?.decode(String.self) ?? "unknown")
        }
    }

    public func recordSale(_ sale: Sale) async throws {
        try await db.errors.mapping {
            let inserted = try await db.client.query(
                """
                INSERT INTO dibs_sales (drop_id, unit, claim_number, fence, order_ref)
                VALUES (\(sale.drop.rawValue), \(sale.unit)::int, \(sale.claim.number), \(sale.fence.value), \(sale.orderRef))
                ON CONFLICT (drop_id, unit) DO NOTHING
                RETURNING claim_number
                """, logger: db.logger
            ).collect()
            guard inserted.isEmpty else { return }
            let existing = try await self.sale(drop: sale.drop, unit: sale.unit)
            guard let existing, existing.claim == sale.claim, existing.fence == sale.fence else {
                throw DibsError(
                    .unitAlreadySold,
                    "unit \(sale.unit) of \(sale.drop) is sold already, under claim \(existing?.claim.description ?? "?")"
                )
            }
        }
    }

    public func sale(drop: DropID, unit: Int) async throws -> Sale? {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                SELECT claim_number, fence, order_ref FROM dibs_sales
                 WHERE drop_id = \(drop.rawValue) AND unit = \(unit)::int
                """, logger: db.logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (claim, fence, orderRef) = try row.decode((Int64, Int64, String?).self)
            return Sale(
                drop: drop, unit: unit, claim: ClaimID(drop: drop, number: claim), fence: Fence(fence),
                orderRef: orderRef)
        }
    }

    public func dropConfiguration(_ drop: DropID) async throws -> DropConfig {
        try await db.errors.mapping {
            let rows = try await db.client.query(
                "SELECT \(unescaped: Self.configColumns) FROM dibs_drops WHERE id = \(drop.rawValue)", logger: db.logger
            ).collect()
            return try Self.config(drop, rows.first)
        }
    }

    public func rescheduleDrop(_ drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig {
        // Validated here first, so the database's CHECK is never the one to refuse.
        _ = try await dropConfiguration(drop).rescheduled(opensAt: opensAt, closesAt: closesAt)
        return try await db.errors.mapping {
            let rows = try await db.client.query(
                """
                SELECT \(unescaped: Self.configColumns)
                  FROM dibs_reschedule(\(drop.rawValue), \(opensAt.milliseconds), \(closesAt?.milliseconds)::bigint)
                """, logger: db.logger
            ).collect()
            return try Self.config(drop, rows.first)
        }
    }

    static let configColumns =
        "units, hold_ttl_ms, per_user_limit, waitlist_capacity, mode, dibs_ms(opens_at), dibs_ms(closes_at)"

    static func config(_ drop: DropID, _ row: PostgresRow?) throws -> DropConfig {
        guard let row else { throw DibsError(.unknownDrop, "no drop \(drop)") }
        let (units, ttl, limit, capacity, mode, opens, closes) = try row.decode(
            (Int, Int, Int, Int, String, Int64, Int64?).self)
        guard let mode = DropMode(rawValue: mode) else {
            throw DibsError(.internalError, "drop \(drop) has an unknown mode \(mode)")
        }
        return try DropConfig(
            id: drop, units: units, holdTTL: .milliseconds(ttl), perUserLimit: limit, waitlistCapacity: capacity,
            mode: mode, opensAt: Timestamp(milliseconds: opens), closesAt: closes.map { Timestamp(milliseconds: $0) })
    }
}
