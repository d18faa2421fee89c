import ArgumentParser
import DibsApp
import DibsClient
import DibsCore
import DibsPostgres
import DibsRedis
import Foundation
import Logging

@main
struct Dibs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dibs: a flash-sale reservation service.",
        subcommands: [
            Serve.self, Keys.self, Migrate.self, Demo.self, StampedeCommand.self, Bench.self, RedisScriptCommand.self,
        ])
}

/// Options every command that talks to Postgres shares.
struct PostgresOptions: ParsableArguments {
    @Option(
        name: .customLong("postgres-url"),
        help: """
            Postgres URL, postgres://user[:password]@host:port/database[?statement_timeout=ms] \
            (env: DIBS_POSTGRES_URL; scripts/dev up writes it to .dibs/env).
            """)
    var url: String?

    /// The URL from the flag or the environment, if either is set.
    func optional() throws -> PostgresURL? {
        guard let url = url ?? ProcessInfo.processInfo.environment["DIBS_POSTGRES_URL"] else { return nil }
        do { return try PostgresURL(url) } catch { throw ValidationError(error.message) }
    }

    func required() throws -> PostgresURL {
        guard let url = try optional() else {
            throw ValidationError("no Postgres URL: pass --postgres-url or set DIBS_POSTGRES_URL")
        }
        return url
    }
}

/// The Redis URL option of commands that can use the Redis store.
struct RedisOptions: ParsableArguments {
    @Option(
        name: .customLong("redis-url"),
        help: "Redis URL, redis://[user:password@]host:port[/db] (env: DIBS_REDIS_URL; written to .dibs/env).")
    var url: String?

    func optional() throws -> RedisURL? {
        guard let url = url ?? ProcessInfo.processInfo.environment["DIBS_REDIS_URL"] else { return nil }
        do { return try RedisURL(url) } catch { throw ValidationError(error.message) }
    }
}

extension PostgresOptions {
    /// Runs `body` with the key store of the required Postgres.
    func withKeyStore<Result: Sendable>(_ body: @Sendable (any APIKeyStore) async throws -> Result) async throws
        -> Result
    {
        try await DibsApp.withKeyStore(try required(), body)
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
        let url = try postgres.required()
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
        abstract: "Fire a stampede of concurrent claims over HTTP at a fresh drop on each backend of a running server.",
        discussion: """
            scripts/dev demo starts `dibs serve` on the dev Redis and Postgres, makes the two \
            keys, and runs this against it.
            """)

    @Option(help: "The server, http://host:port (env: DIBS_URL).")
    var url: String?
    @Option(help: "An operator key, to create the drops (env: DIBS_OPERATOR_KEY).")
    var operatorKey: String?
    @Option(help: "A storefront key, to claim (env: DIBS_STOREFRONT_KEY).")
    var storefrontKey: String?
    @Option(help: "Backends to make a drop on, comma-separated.") var backends = "redis,postgres"
    @Option(help: "How many claims (one shopper each).") var claims = 20_000
    @Option(help: "How many units each drop has.") var units = 100
    @Option(help: "Keep-alive connections, each with one claim in flight.") var connections = 64

    func run() async throws {
        guard claims > 0, units > 0, connections > 0 else {
            throw ValidationError("claims, units and connections are positive")
        }
        guard let url = url ?? environment("DIBS_URL"), let (host, port) = hostAndPort(of: url) else {
            throw ValidationError("pass --url http://host:port (or set DIBS_URL)")
        }
        guard let operatorKey = operatorKey ?? environment("DIBS_OPERATOR_KEY"),
            let storefrontKey = storefrontKey ?? environment("DIBS_STOREFRONT_KEY")
        else { throw ValidationError("pass --operator-key and --storefront-key (or DIBS_OPERATOR_KEY/STOREFRONT_KEY)") }
        let stampede = HTTPStampede(
            host: host, port: port, operatorKey: operatorKey, storefrontKey: storefrontKey, claims: claims,
            units: units, connections: connections)
        print(
            "stampede over HTTP at \(url): \(claims) shoppers, one claim each, on a fresh \(units)-unit drop per backend"
        )
        print("(\(connections) keep-alive connections; the waitlist holds as many claims as there are units)")
        print(StampedeTable.header)
        var failures: [String] = []
        for backend in backends.split(separator: ",").map(String.init) {
            let report = try await stampede.run(backend: backend)
            print(StampedeTable.row(report))
            if report.distinctUnits != report.held || report.held != min(units, claims) || report.other != 0 {
                failures.append(
                    "\(backend): \(report.held) holds on \(report.distinctUnits) distinct units, \(report.other) other answers"
                )
            }
        }
        guard failures.isEmpty else { throw ValidationError(failures.joined(separator: "; ")) }
        print("every backend gave each unit to exactly one shopper")
    }
}

struct StampedeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede",
        abstract: "Fire concurrent claims at one drop on one store, from this process.",
        discussion: """
            Several processes can stampede one Postgres drop at once (--drop, with --create in \
            only one of them); --json prints the report with the held units for a checker; \
            --wait-for-go starts them at one moment.
            """)

    @OptionGroup var postgres: PostgresOptions
    @OptionGroup var redis: RedisOptions
    @Option(help: "The store: \(StoreKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var store: String = "memory"
    @Option(help: "The drop to claim on (default: a fresh one, created).") var drop: String?
    @Flag(help: "Create --drop first.") var create = false
    @Option(help: "How many claims.") var claims = 20_000
    @Option(help: "Units of the drop when it is created.") var units = 100
    @Option(help: "Claims in flight at once.") var concurrency = 1_000
    @Option(help: "Shopper ids are PREFIX-n.") var shopperPrefix = "shopper"
    @Flag(help: "Print the report as JSON.") var json = false
    @Flag(
        help: """
            Once connected (and the drop created), print "ready" on stderr and claim only after a \
            line arrives on stdin: several processes then stampede at one moment.
            """)
    var waitForGo = false

    func run() async throws {
        guard let kind = StoreKind(rawValue: store) else { throw ValidationError("unknown store \(store)") }
        let waitForGo = self.waitForGo
        let stampede = Stampede(claims: claims, units: units, concurrency: concurrency, shopperPrefix: shopperPrefix)
        let dropID: DropID
        do { dropID = try drop.map(DropID.init) ?? Stampede.freshDrop() } catch let error as DibsError {
            throw ValidationError(error.message)
        }
        let mustCreate = create || drop == nil
        let report = try await withStore(
            kind, postgres: postgres.optional(), redis: redis.optional(), logger: Logger(label: "dibs.stampede")
        ) {
            store in
            if mustCreate { try await stampede.createDrop(dropID, on: store) }
            if waitForGo { try await Self.awaitGo(on: store, drop: dropID) }
            return try await stampede.run(on: store, drop: dropID)
        }
        if json {
            print(
                """
                {"backend":"\(report.backend)","drop":"\(dropID)","claims":\(report.claims),"held":\(report.held),\
                "waitlisted":\(report.waitlisted),"soldOut":\(report.soldOut),"other":\(report.other),\
                "seconds":\(report.seconds),"heldUnits":[\(report.heldUnits.map(String.init).joined(separator: ","))]}
                """)
        } else {
            print(StampedeTable.header)
            print(StampedeTable.row(report))
        }
    }
}

extension StampedeCommand {
    /// Proves the store answers for `drop` (so the connection is up), says "ready" and waits
    /// for stdin's first line.
    static func awaitGo(on store: any LeaseStore, drop: DropID) async throws {
        _ = try await store.counts(drop: drop)
        FileHandle.standardError.write(Data("ready\n".utf8))
        let line = await Task.detached { readLine() }.value
        guard line != nil else { throw ValidationError("stdin closed before the go line") }
    }
}

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure a store's claim rate: N workers claiming one after another (closed loop).",
        discussion: """
            scripts/dev bench runs this beside pgbench / redis-benchmark with the same concurrency \
            and prints the ratio. Prints one line: path, claims, seconds, claims/s, p50 and p99 in ms.
            """)

    @OptionGroup var postgres: PostgresOptions
    @OptionGroup var redis: RedisOptions
    @Option(help: "The store: \(StoreKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var store: String = "postgres"
    @Option(help: "claim (free units) or sold-out.") var path: String = "claim"
    @Option(help: "A drop prepared for the path (default: a fresh one the benchmark prepares).") var drop: String?
    @Option(help: "Workers, each with one claim in flight.") var concurrency = 32
    @Option(help: "Seconds to run.") var seconds = 10
    @Option(help: "Pooled Postgres connections; more than twice the cores only adds contention.")
    var connections = 16
    @Flag(help: "Only prepare a fresh drop for the path and print its id (for redis-benchmark and pgbench).")
    var prepare = false

    func run() async throws {
        guard let kind = StoreKind(rawValue: store) else { throw ValidationError("unknown store \(store)") }
        guard let path = ClaimBenchmark.Path(rawValue: path) else { throw ValidationError("unknown path \(path)") }
        guard concurrency > 0, seconds > 0 else { throw ValidationError("concurrency and seconds are positive") }
        let benchmark = ClaimBenchmark(path: path, concurrency: concurrency, duration: .seconds(seconds))
        let existing: DropID?
        do { existing = try drop.map { text throws(DibsError) in try DropID(text) } } catch {
            throw ValidationError(error.message)
        }
        let result = try await withStore(
            kind, postgres: postgres.optional(), redis: redis.optional(), connections: connections,
            logger: Logger(label: "dibs.bench")
        ) { store -> (ClaimBenchmark.Result?, DropID?) in
            if prepare { return (nil, try await benchmark.prepareDrop(on: store)) }
            return (try await benchmark.run(on: store, existing: existing), nil)
        }
        if let prepared = result.1 {
            print(prepared)
            return
        }
        guard let result = result.0 else { return }
        let outcomes = result.outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        print(
            "path=\(path.rawValue) claims=\(result.claims) seconds=\(result.seconds) rate=\(Int(result.claimsPerSecond)) "
                + "p50_ms=\(result.p50Milliseconds) p99_ms=\(result.p99Milliseconds) outcomes=\(outcomes)")
    }
}

struct RedisScriptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis-script",
        abstract: "Load the claim script into Redis and print its SHA-1 (for redis-benchmark EVALSHA).")

    @OptionGroup var redis: RedisOptions

    func run() async throws {
        guard let url = try redis.optional() else { throw ValidationError("no Redis URL: set DIBS_REDIS_URL") }
        let client = RedisClient(url: url, logger: Logger(label: "dibs.redis-script"))
        defer { client.close() }
        let loaded = try await client.send(["SCRIPT", "LOAD", LeaseScripts.claim.source])
        guard loaded.text == LeaseScripts.claim.sha1 else { throw ValidationError("Redis answered \(loaded)") }
        print(LeaseScripts.claim.sha1)
    }
}
