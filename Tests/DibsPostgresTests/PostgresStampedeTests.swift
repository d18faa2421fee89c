import DibsCore
import DibsPostgres
import Foundation
import LeaseStoreConformance
import PostgresNIO
import Testing

/// Claims that meet a unit another claim is taking (locked, not yet committed), against the
/// Postgres of scripts/dev. Such a claim used to skip the unit (SKIP LOCKED), count the held
/// units without it, see none, and answer "sold out" while the line had room — or while the
/// unit was free, had the other claim given it back (migration 009).
@Suite("PostgresLeaseStore: claims meeting a unit being taken")
struct PostgresStampedeTests {
    /// A one-unit drop whose unit a claim takes in a transaction left open. `body` gets the
    /// store (on other connections), the drop, and `end`, which waits until another call is
    /// blocked by that transaction — the claim under test, waiting on the unit — and then ends
    /// the transaction with `ending`.
    static func withUnitBeingTaken(
        ending: String,
        _ body:
            @Sendable (PostgresLeaseStore, DropID, _ end: @Sendable () async throws -> Void)
            async throws -> Void
    ) async throws {
        try await TestPostgres.withClient { client in
            let store = PostgresLeaseStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger)
            let drop = try DropID("taking-\(UInt32.random(in: 0...UInt32.max))")
            try await store.createDrop(
                DropConfig(id: drop, units: 1, waitlistCapacity: 3, opensAt: SystemClock().now().adding(.seconds(-1))))
            try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: TestPostgres.logger)
                let taken = try await connection.query(
                    "SELECT (dibs_claim(\(drop.rawValue), 'first', 'k-first', '00')).state", logger: TestPostgres.logger
                ).collect()
                #expect(try taken.first?.decode(String.self) == "held")
                let taker = try await connection.query("SELECT pg_backend_pid()", logger: TestPostgres.logger)
                    .collect().first?.decode(Int32.self)
                let pid = try #require(taker)
                try await body(store, drop) {
                    try await Self.waitUntilBlocked(by: pid, client)
                    try await connection.query(PostgresQuery(unsafeSQL: ending), logger: TestPostgres.logger)
                }
            }
        }
    }

    /// Waits (at most 10 s) until some backend waits on a lock that backend `pid` holds.
    static func waitUntilBlocked(by pid: Int32, _ client: PostgresClient) async throws {
        for _ in 0..<1000 {
            let rows = try await client.query(
                "SELECT count(*)::int FROM pg_stat_activity WHERE \(pid) = ANY(pg_blocking_pids(pid))",
                logger: TestPostgres.logger
            ).collect()
            if try rows.first?.decode(Int.self) ?? 0 > 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("no claim waited on the unit being taken")
    }

    /// The claim that met the unit waits for the taker, then lines up behind its lease.
    @Test func aClaimMeetingAUnitBeingTakenLinesUpOnceItIsHeld() async throws {
        try await Self.withUnitBeingTaken(ending: "COMMIT") { store, drop, end in
            async let second = store.claim(request(drop, 2))
            try await end()
            #expect(try await second.decision == .waitlisted(position: 1))
        }
    }

    /// The taker gave the unit back (its transaction rolled back): the claim gets the unit.
    @Test func aClaimMeetingAUnitGivenBackTakesIt() async throws {
        try await Self.withUnitBeingTaken(ending: "ROLLBACK") { store, drop, end in
            async let second = store.claim(request(drop, 2))
            try await end()
            guard case .held(let unit, _, _) = try await second.decision else {
                Issue.record("the unit given back was not taken: \(try await second.decision)")
                return
            }
            #expect(unit == 0)
        }
    }

    /// Many claims at once, in rounds: exactly as many leases as units, as many in line as it
    /// holds, the rest sold out.
    @Test func everyUnitIsHeldTheLineFillsAndOnlyTheRestAreSoldOut() async throws {
        try await TestPostgres.withClient { client in
            let store = PostgresLeaseStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger)
            let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
            // Several rounds: the window lasts as long as the first claims' transactions.
            for round in 0..<8 {
                let config = try DropConfig(
                    id: DropID("stampede-\(tag)-\(round)"), units: 3, holdTTL: .seconds(60), waitlistCapacity: 3,
                    opensAt: SystemClock().now().adding(.seconds(-1)))
                try await store.createDrop(config)
                let decisions = try await withThrowingTaskGroup(of: ClaimOutcome.Decision.self) { group in
                    for shopper in 0..<40 {
                        group.addTask {
                            try await store.claim(
                                ClaimRequest(
                                    drop: config.id, user: UserID("s\(shopper)"),
                                    idempotencyKey: IdempotencyKey("k\(shopper)"))
                            ).decision
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                var held = 0
                var waitlisted = 0
                var soldOut = 0
                for decision in decisions {
                    switch decision {
                    case .held: held += 1
                    case .waitlisted: waitlisted += 1
                    case .rejected(.soldOut): soldOut += 1
                    default: Issue.record("round \(round): \(decision)")
                    }
                }
                #expect(
                    held == 3 && waitlisted == 3 && soldOut == 34,
                    "round \(round): \(held) held, \(waitlisted) waitlisted, \(soldOut) sold out")
            }
        }
    }
}
