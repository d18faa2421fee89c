import DibsPostgres
import PostgresNIO
import Testing

/// The plans Postgres picks for the lease functions' lookups, on a drop big enough for the
/// planner to care. A function's plan is generic (the drop is a parameter), and for some
/// forms a generic plan scans every unit row of every drop: the first version of
/// `dibs_all_sold` did (0.4 s a claim on 4.3 million rows; Postgres drops fell to 439
/// claims/s). This checks plans, not times.
@Suite("Query plans of the lease functions, against the real Postgres", .serialized)
struct QueryPlanTests {
    @Test func theSoldCheckProbesTheIndexesUnderAGenericPlan() async throws {
        let migrations = try Migration.load(from: TestPostgres.schemaDirectory)
        try await TestPostgres.withScratchDatabase { database in
            try await TestPostgres.withClient(database: database) { client in
                _ = try await Migrator(client: client, logger: TestPostgres.logger).migrate(migrations)
                // One drop of 200,000 free units: a generic estimate of its free units is large.
                _ = try await client.query(
                    """
                    SELECT dibs_create_drop('big', 'postgres', 200000, 120000, 1, 0, 'first-come',
                        (extract(epoch FROM now()) * 1000)::bigint, NULL)
                    """)
                _ = try await client.query("ANALYZE dibs_units")
                let source = try await client.query("SELECT prosrc FROM pg_proc WHERE proname = 'dibs_all_sold'")
                    .collect().first?.decode(String.self)
                let body = try #require(source).replacingOccurrences(of: "p_drop", with: "$1")

                try await client.withConnection { connection in
                    func genericPlan(_ name: String, _ sql: String) async throws -> String {
                        _ = try await connection.query(
                            PostgresQuery(unsafeSQL: "PREPARE \(name)(text) AS \(sql)"), logger: TestPostgres.logger)
                        let rows = try await connection.query(
                            PostgresQuery(unsafeSQL: "EXPLAIN EXECUTE \(name)('big')"), logger: TestPostgres.logger
                        ).collect()
                        return try rows.map { try $0.decode(String.self) }.joined(separator: "\n")
                    }
                    _ = try await connection.query(
                        "SET plan_cache_mode = force_generic_plan", logger: TestPostgres.logger)
                    // The trap is there: the same check written with NOT EXISTS scans the table.
                    let naive = try await genericPlan(
                        "naive",
                        """
                        SELECT NOT EXISTS (SELECT 1 FROM dibs_units WHERE drop_id = $1 AND state = 'free')
                           AND NOT EXISTS (SELECT 1 FROM dibs_units WHERE drop_id = $1 AND state = 'held')
                        """)
                    #expect(naive.contains("Seq Scan on dibs_units"), "the data no longer provokes the trap:\n\(naive)")
                    // The function's own body does not.
                    let plan = try await genericPlan("sold_check", body)
                    #expect(!plan.contains("Seq Scan"), "dibs_all_sold scans the table:\n\(plan)")
                    #expect(plan.contains("dibs_units_free") && plan.contains("dibs_units_held"), "\(plan)")
                }
            }
        }
    }
}
