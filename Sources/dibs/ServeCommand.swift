import ArgumentParser
import DibsApp
import DibsCore
import DibsHTTP
import Foundation
import Logging

/// Reads a `DIBS_*` variable.
func environment(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the claim API over HTTP until SIGTERM or SIGINT.",
        discussion: """
            Every flag has a DIBS_* environment variable; a flag wins over its variable. \
            On SIGTERM the server stops accepting connections, finishes the requests in flight, \
            then exits. With --store memory everything lives in the process and two API keys \
            (operator, storefront) are printed at start; otherwise create keys with `dibs keys create`.
            """)

    @Option(help: "Address to listen on (env: DIBS_HOST).")
    var host: String?
    @Option(help: "Port to listen on, 0 for any free port (env: DIBS_PORT; default 8080).")
    var port: Int?
    @Option(
        help: """
            Where drops live: `servers` (Postgres, plus Redis when a Redis URL is set; drops choose \
            `postgres` or `redis`) or `memory` (one process, nothing kept; for trying the API) \
            (env: DIBS_STORE; default servers).
            """)
    var store: String?
    @OptionGroup var postgres: PostgresOptions
    @OptionGroup var redis: RedisOptions
    @Option(help: "Largest request body in bytes; larger ones get 413 (env: DIBS_MAX_BODY_BYTES; default 4096).")
    var maxBodyBytes: Int?
    @Option(
        help: """
            Requests per second per API key, as RATE or RATE/BURST, or `off` \
            (env: DIBS_RATE_PER_KEY; default 10000/20000).
            """)
    var ratePerKey: String?
    @Option(help: "Claims per second per shopper, RATE[/BURST] or `off` (env: DIBS_RATE_PER_SHOPPER; default 2/5).")
    var ratePerShopper: String?
    @Option(
        help: """
            Requests per second per client address without a valid API key (guessing keys), \
            RATE[/BURST] or `off`; authenticated callers are limited per key and per shopper \
            (env: DIBS_RATE_PER_IP; default 500/1000).
            """)
    var ratePerIP: String?
    @Option(
        help: """
            Seconds a connection may sit with no request in progress, or take to send a request's \
            body after its head, before it is closed; 0 never closes it (env: DIBS_IDLE_TIMEOUT; \
            default 60).
            """)
    var idleTimeout: Int?
    @Option(help: "Pooled Postgres connections (env: DIBS_POSTGRES_CONNECTIONS; default 32).")
    var postgresConnections: Int?
    @Option(help: "Pipelined Redis connections (env: DIBS_REDIS_CONNECTIONS; default 4).")
    var redisConnections: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error (env: DIBS_LOG_LEVEL; default info).")
    var logLevel: String?
    @Option(
        help: """
            64 hex digits (openssl rand -hex 32) sealing the hold tokens kept for replays; every \
            instance needs the same; prefer the variable, as a flag shows in `ps` \
            (env: DIBS_HOLD_TOKEN_KEY; default: a key of this process's own, so a replay after a \
            restart comes without its token).
            """)
    var holdTokenKey: String?

    func run() async throws {
        var logger = Logger(label: "dibs.serve")
        let level = logLevel ?? environment("DIBS_LOG_LEVEL") ?? "info"
        guard let parsedLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        logger.logLevel = parsedLevel

        let storeName = store ?? environment("DIBS_STORE") ?? "servers"
        var configuration: ServeConfiguration
        var memoryKeys: [(APIKey, APIKeyRecord)] = []
        switch storeName {
        case "memory":
            configuration = ServeConfiguration(stores: .memory)
            let now = SystemClock().now()
            for scope in [APIScope.operator, .storefront] {
                let key = APIKey.generate()
                memoryKeys.append((key, key.record(name: "memory-\(scope.rawValue)", scope: scope, createdAt: now)))
            }
        case "servers":
            guard let postgresURL = try postgres.optional() else {
                throw ValidationError(
                    "no Postgres URL: pass --postgres-url or set DIBS_POSTGRES_URL, or try the API with --store memory")
            }
            configuration = ServeConfiguration(stores: .servers(postgres: postgresURL, redis: try redis.optional()))
        default:
            throw ValidationError("--store must be servers or memory, not \(storeName)")
        }
        configuration.host = host ?? environment("DIBS_HOST") ?? "127.0.0.1"
        configuration.port = try number(port, "--port", "DIBS_PORT", in: 0...65535) ?? 8080
        configuration.postgresConnections =
            try number(postgresConnections, "--postgres-connections", "DIBS_POSTGRES_CONNECTIONS", in: 1...1000) ?? 32
        configuration.redisConnections =
            try number(redisConnections, "--redis-connections", "DIBS_REDIS_CONNECTIONS", in: 1...64) ?? 4
        var settings = configuration.settings
        settings.maximumBodyBytes =
            try number(maxBodyBytes, "--max-body-bytes", "DIBS_MAX_BODY_BYTES", in: 64...1_048_576) ?? 4096
        let idleSeconds = try number(idleTimeout, "--idle-timeout", "DIBS_IDLE_TIMEOUT", in: 0...86_400) ?? 60
        settings.idleTimeout = idleSeconds == 0 ? nil : .seconds(idleSeconds)
        if let text = ratePerKey ?? environment("DIBS_RATE_PER_KEY") { settings.perKeyLimit = try rate(text, "key") }
        if let text = ratePerShopper ?? environment("DIBS_RATE_PER_SHOPPER") {
            settings.perShopperLimit = try rate(text, "shopper")
        }
        if let text = ratePerIP ?? environment("DIBS_RATE_PER_IP") { settings.perIPLimit = try rate(text, "IP") }
        if let text = holdTokenKey ?? environment("DIBS_HOLD_TOKEN_KEY") {
            do { settings.holdTokenSeal = try HoldTokenSeal(hex: text) } catch {
                throw ValidationError("the hold-token key (DIBS_HOLD_TOKEN_KEY) is 64 hex digits: openssl rand -hex 32")
            }
        } else if storeName == "servers" {
            logger.warning(
                """
                no DIBS_HOLD_TOKEN_KEY: the hold tokens kept for replays are sealed with a key of this \
                process's own, so after a restart, or on another instance, a replay comes without its token
                """)
        }
        configuration.settings = settings

        let keys = memoryKeys
        let host = configuration.host
        try await runServer(configuration, memoryKeys: keys.map(\.1), logger: logger) { port in
            // Written unbuffered: scripts wait for the "listening" line on a pipe.
            var lines = keys.map { "\($0.1.scope.rawValue) API key: \($0.0.text)\n" }
            lines.append("dibs serve listening on http://\(host):\(port) (stores: \(storeName))\n")
            FileHandle.standardOutput.write(Data(lines.joined().utf8))
        }
    }

    /// The flag's value, else its variable's; either refused outside `range`, by name.
    private func number(_ flagValue: Int?, _ flag: String, _ variable: String, in range: ClosedRange<Int>) throws
        -> Int?
    {
        let value: Int?
        let name: String
        if let flagValue {
            (value, name) = (flagValue, flag)
        } else if let text = environment(variable) {
            (value, name) = (Int(text), variable)
        } else {
            return nil
        }
        guard let value, range.contains(value) else {
            throw ValidationError("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// Parses `RATE`, `RATE/BURST` or `off`.
    private func rate(_ text: String, _ what: String) throws -> RateLimit? {
        if text == "off" { return nil }
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let perSecond = parts.first.flatMap({ Double($0) }), perSecond > 0,
            parts.count == 1 || Int(parts[1]).map({ $0 >= 1 }) == true
        else { throw ValidationError("the \(what) rate limit is RATE or RATE/BURST (per second) or off, not \(text)") }
        return RateLimit(perSecond: perSecond, burst: parts.count == 2 ? Int(parts[1]) : nil)
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys (kept in Postgres, salted and hashed).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key and print it: the only time the key is shown.")
        @OptionGroup var postgres: PostgresOptions
        @Option(help: "storefront (claims, status, confirm, release, drop counts) or operator (also /v1/admin).")
        var scope: String
        @Option(help: "Who the key is for (1 to 128 characters), shown by `dibs keys list`.")
        var name: String
        @Flag(help: "Print only the key, for scripts.")
        var quiet = false

        func run() async throws {
            guard let scope = APIScope(rawValue: scope) else {
                throw ValidationError("--scope must be storefront or operator")
            }
            guard (1...128).contains(name.utf8.count) else { throw ValidationError("--name is 1 to 128 characters") }
            let key = APIKey.generate()
            try await postgres.withKeyStore { store in
                try await store.insert(key.record(name: name, scope: scope, createdAt: SystemClock().now()))
            }
            if quiet {
                print(key.text)
            } else {
                print("created \(scope.rawValue) key \(key.id) for \(name); keep it now, it is not shown again:")
                print(key.text)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys: id, scope, name, created, revoked.")
        @OptionGroup var postgres: PostgresOptions

        func run() async throws {
            let records = try await postgres.withKeyStore { try await $0.list() }
            print("id            scope       created                   revoked                   name")
            for r in records {
                let revoked = r.revokedAt.map(RFC3339.format) ?? "-"
                print(
                    "\(r.id)  \(r.scope.rawValue.padding(10))  \(RFC3339.format(r.createdAt))  \(revoked.padding(24))  \(r.name)"
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key by id; servers stop taking it within 5 seconds.")
        @OptionGroup var postgres: PostgresOptions
        @Argument(help: "The key's id (the 12 hex digits after dibs_).")
        var id: String

        func run() async throws {
            let found = try await postgres.withKeyStore { try await $0.revoke(id: id, at: SystemClock().now()) }
            guard found else { throw ValidationError("no key has id \(id)") }
            print("revoked key \(id)")
        }
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
