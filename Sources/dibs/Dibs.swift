import ArgumentParser
import DibsApp
import DibsCore
import DibsPostgres
import Foundation
import Logging

@main
struct Dibs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dibs: a flash-sale reservation service.",
        subcommands: [Migrate.self, Demo.self])
}

/// Options every command that talks to Postgres shares.
struct PostgresOptions: ParsableArguments {
    @Option(
        name: .customLong("postgres-url"),
        help: "Postgres URL, postgres://user[:password]@host:port/database (env: DIBS_POSTGRES_URL).")
    var url: String?

    func parsed() throws -> PostgresURL {
        guard let url = url ?? ProcessInfo.processInfo.environment["DIBS_POSTGRES_URL"] else {
            throw ValidationError(
                "no Postgres URL: pass --postgres-url or set DIBS_POSTGRES_URL (scripts/dev up writes it to .dibs/env)")
        }
        do { return try PostgresURL(url) } catch { throw ValidationError(error.message) }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the pending schema migrations, in order, each in a transaction.",
        discussion: """
            Safe to run twice and from several processes at once. Refuses to run if a migration \
            that was applied has since changed.
            """)

    @OptionGroup var postgres: PostgresOptions
    @Option(help: "The directory of NNN_name.sql migrations (env: DIBS_SCHEMA_DIR).")
    var schema: String = ProcessInfo.processInfo.environment["DIBS_SCHEMA_DIR"] ?? "schema"

    func run() async throws {
        let url = try postgres.parsed()
        let report = try await migrateDatabase(at: url, schemaDirectory: schema, logger: Logger(label: "dibs.migrate"))
        if report.applied.isEmpty {
            print(
                "schema up to date: \(report.alreadyApplied.count) migration(s) applied before, none pending (\(url))")
        } else {
            print("applied migration(s) \(report.applied.map(String.init).joined(separator: ", ")) to \(url)")
        }
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fire a stampede of concurrent claims at a fresh drop on every store, in process.")

    @Option(help: "How many claims (one shopper each).") var claims = 20_000
    @Option(help: "How many units the drop has.") var units = 100
    @Option(help: "Claims in flight at once.") var concurrency = 1_000

    func run() async throws {
        guard claims > 0, units > 0, concurrency > 0 else {
            throw ValidationError("claims, units and concurrency are positive")
        }
        let stampede = Stampede(claims: claims, units: units, concurrency: concurrency)
        print("stampede: \(claims) concurrent claims on a \(units)-unit drop, \(concurrency) in flight")
        print(StampedeTable.header)
        let report = try await stampede.run(on: MemoryLeaseStore())
        print(StampedeTable.row(report))
        guard report.distinctUnits == report.held, report.held <= units else {
            throw ValidationError("\(report.backend): \(report.held) holds on \(report.distinctUnits) distinct units")
        }
    }
}
