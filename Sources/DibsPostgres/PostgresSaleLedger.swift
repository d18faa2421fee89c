public import DibsCore
public import Logging
public import PostgresNIO

/// The sale ledger in Postgres: `dibs_drops` and `dibs_sales`, whose primary key on
/// `(drop, unit)` refuses a second sale of a unit.
public struct PostgresSaleLedger: SaleLedger {
    private let client: PostgresClient
    private let logger: Logger
    private let errors: PostgresErrorMapper

    /// Makes a ledger on a client whose `run()` the caller keeps going.
    public init(client: PostgresClient, server: PostgresURL, logger: Logger) {
        self.client = client
        self.logger = logger
        self.errors = PostgresErrorMapper(server: "Postgres at \(server.host):\(server.port)")
    }

    public func registerDrop(_ config: DropConfig, backend: String) async throws -> DropRegistration {
        try await errors.mapping {
            let rows = try await client.query(
                """
                SELECT dibs_create_drop(\(config.id.rawValue), \(backend), \(config.units)::int,
                    \(Int(config.holdTTL.wholeMilliseconds))::int, \(config.perUserLimit)::int,
                    \(config.waitlistCapacity)::int, \(config.mode.rawValue), \(config.opensAt.milliseconds),
                    \(config.closesAt?.milliseconds)::bigint)
                """, logger: logger
            ).collect()
            if try rows.first?.decode(String.self) == "ok" { return .created }
            let existing = try await client.query(
                "SELECT backend FROM dibs_drops WHERE id = \(config.id.rawValue)", logger: logger
            ).collect()
            return .exists(backend: try existing.first?.decode(String.self) ?? "unknown")
        }
    }

    public func recordSale(_ sale: Sale) async throws {
        try await errors.mapping {
            let inserted = try await client.query(
                """
                INSERT INTO dibs_sales (drop_id, unit, claim_number, fence, order_ref)
                VALUES (\(sale.drop.rawValue), \(sale.unit)::int, \(sale.claim.number), \(sale.fence.value), \(sale.orderRef))
                ON CONFLICT (drop_id, unit) DO NOTHING
                RETURNING claim_number
                """, logger: logger
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
        try await errors.mapping {
            let rows = try await client.query(
                """
                SELECT claim_number, fence, order_ref FROM dibs_sales
                 WHERE drop_id = \(drop.rawValue) AND unit = \(unit)::int
                """, logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (claim, fence, orderRef) = try row.decode((Int64, Int64, String?).self)
            return Sale(
                drop: drop, unit: unit, claim: ClaimID(drop: drop, number: claim), fence: Fence(fence),
                orderRef: orderRef)
        }
    }
}
