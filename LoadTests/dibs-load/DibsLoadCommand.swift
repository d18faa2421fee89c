import ArgumentParser
import DibsCheck
import DibsClient
import DibsLoad
import Foundation

@main
struct DibsLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dibs-load",
        abstract: "Fire concurrent claims at a dibs serve, record the history, and check it.",
        discussion: """
            Creates a fresh drop (or uses --drop), fires --claims claims by --shoppers shoppers over \
            --connections keep-alive connections (closed model), or on a schedule of --rate claims per \
            second (open model, latency measured from the intended send time), then checks that no \
            unit went to two shoppers, nobody was told sold out while a unit was free, the per-user \
            limit held and every Idempotency-Key got one answer. Exits 1 when a check fails or a \
            threshold is missed. Keys come from --operator-key/--storefront-key or \
            DIBS_OPERATOR_KEY/DIBS_STOREFRONT_KEY (scripts/dev keys prints the dev ones).
            """)

    @Option(help: "The server, http://host:port (env: DIBS_URL).") var url: String?
    @Option(help: "Operator key, to create the drop (env: DIBS_OPERATOR_KEY).") var operatorKey: String?
    @Option(help: "Storefront key, to claim (env: DIBS_STOREFRONT_KEY).") var storefrontKey: String?
    @Option(help: "Claim on this existing drop instead of creating one.") var drop: String?
    @Option(help: "Units of the drop to create.") var units = 100
    @Option(help: "Backend of the drop to create: redis or postgres (default: the server's).") var backend: String?
    @Option(help: "Hold TTL of the drop to create, in seconds.") var ttl = 300
    @Option(help: "Per-user limit of the drop to create.") var limit = 1
    @Option(help: "Waitlist of the drop to create (0: none; with one, limit answers are not checked).")
    var waitlist = 0
    @Option(help: "Distinct shoppers; claim i is made by shopper i mod shoppers.") var shoppers = 5_000
    @Option(help: "How many claims.") var claims = 20_000
    @Option(help: "Keep-alive connections (the concurrency of the closed model).") var connections = 256
    @Option(help: "Open model: claims per second, on a schedule.") var rate: Double?
    @Option(help: "stampede (claims only) or checkout (winners confirm, retries, greedy shoppers).")
    var scenario = "stampede"
    @Option(help: "Checkout: longest delay before a winner confirms, in milliseconds.") var confirmDelayMs = 500
    @Option(help: "Seconds before a request counts as unanswered.") var timeout = 10.0
    @Option(help: "Seed of the scenario's random choices.") var seed: UInt64 = 1
    @Option(help: "Write the report as JSON to this file.") var json: String?
    @Option(help: "Write the report as an HTML page to this file.") var html: String?
    @Option(help: "Write the history the checker read (every operation, client clock) as JSON to this file.")
    var history: String?
    @Option(help: "Fire nothing: check a history written by --history again, and print what the checker finds.")
    var checkHistory: String?
    @Option(help: "Fail when the claims' p99 latency is above this, in milliseconds.") var maxP99: Double?
    @Option(help: "Fail when fewer claims per second were answered.") var minRate: Double?
    @Flag(help: "No live progress line.") var quiet = false
    @Option(
        help: """
            A fault: kill-server (kill -9 dibs serve a third of the way through, start it again), \
            restart-redis (the run starts its own Redis and Postgres for the server; kill -9 Redis, \
            start it again 1 s later), pause-postgres (own servers too; SIGSTOP Postgres for 3 s), \
            zombie-shopper (checkout: one winner in twenty confirms after its lease expired).
            """)
    var fault: String?
    @Option(help: "Checkout: the share of winners who release their hold.") var releaseShare = 0.1
    @Option(help: "Checkout: the share of winners who abandon their hold (it expires).") var abandonShare = 0.1
    @Option(
        help: """
            Start the server under test from this command line (space-separated, with a fixed --port), \
            instead of --url: a fault acts only on a server the run started.
            """)
    var serveCommand: String?

    func run() async throws {
        if let checkHistory {
            try Self.recheck(checkHistory)
            return
        }
        let url =
            url ?? ProcessInfo.processInfo.environment["DIBS_URL"] ?? (serveCommand != nil ? "http://127.0.0.1:0" : "")
        guard let (host, port) = hostAndPort(of: url) else {
            throw ValidationError("pass --url http://host:port (or set DIBS_URL)")
        }
        let faultPreset = try fault.map { name in
            guard let preset = LoadPlan.Fault(rawValue: name) else {
                throw ValidationError(
                    "--fault is one of \(LoadPlan.Fault.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return preset
        }
        if faultPreset?.needsServer == true && serveCommand == nil {
            throw ValidationError("this fault needs --serve-command: it acts only on a server the run starts itself")
        }
        if faultPreset == .zombieShopper && scenario != "checkout" {
            throw ValidationError("zombie-shopper acts on confirms: use it with --scenario checkout")
        }
        let environment = ProcessInfo.processInfo.environment
        // With its own stores the run makes its own keys.
        let ownKeys = faultPreset?.needsOwnStores == true
        guard let operatorKey = operatorKey ?? environment["DIBS_OPERATOR_KEY"] ?? (ownKeys ? "" : nil),
            let storefrontKey = storefrontKey ?? environment["DIBS_STOREFRONT_KEY"] ?? (ownKeys ? "" : nil)
        else { throw ValidationError("pass --operator-key and --storefront-key (or the DIBS_* variables)") }
        guard let scenario = LoadPlan.Scenario(rawValue: scenario) else {
            throw ValidationError("--scenario is stampede or checkout")
        }
        guard claims > 0, shoppers > 0, connections > 0, units > 0, waitlist >= 0, rate.map({ $0 > 0 }) ?? true else {
            throw ValidationError(
                "claims, shoppers, connections, units and rate are positive; the waitlist is not negative")
        }
        var plan = LoadPlan()
        plan.host = host
        plan.port = port
        plan.operatorKey = operatorKey
        plan.storefrontKey = storefrontKey
        plan.drop = drop
        plan.units = units
        plan.backend = backend
        plan.holdTTLSeconds = ttl
        plan.perUserLimit = limit
        plan.waitlistCapacity = waitlist
        plan.shoppers = shoppers
        plan.claims = claims
        plan.connections = connections
        plan.rate = rate
        plan.scenario = scenario
        guard (0...1).contains(releaseShare), (0...1).contains(abandonShare), releaseShare + abandonShare <= 1 else {
            throw ValidationError("--release-share and --abandon-share are shares between 0 and 1, together at most 1")
        }
        plan.releaseShare = releaseShare
        plan.abandonShare = abandonShare
        plan.confirmDelay = .milliseconds(confirmDelayMs)
        plan.requestTimeout = .milliseconds(Int64(timeout * 1000))
        plan.seed = seed
        plan.progress = !quiet
        plan.fault = faultPreset
        plan.serveCommand = serveCommand.map { $0.split(separator: " ").map(String.init) }

        let report = try await LoadRun.run(plan) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        print(report.text)
        if let json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            print("JSON report: \(json)")
        }
        if let history, let checked = report.checkedHistory {
            try JSONEncoder().encode(checked).write(to: URL(fileURLWithPath: history))
            print("history: \(history)")
        }
        if let html {
            try Data(report.html.utf8).write(to: URL(fileURLWithPath: html))
            print("HTML report: \(html)")
        }
        var missed: [String] = []
        if let maxP99, report.claimLatency.p99 > maxP99 {
            missed.append(String(format: "p99 %.2f ms is above --max-p99 %.2f", report.claimLatency.p99, maxP99))
        }
        if let minRate, report.claimRate < minRate {
            missed.append(String(format: "%.0f claims/s is below --min-rate %.0f", report.claimRate, minRate))
        }
        for line in missed { print("THRESHOLD MISSED: \(line)") }
        if !report.passed || !missed.isEmpty { throw ExitCode(1) }
    }

    /// Checks a recorded history again: the findings, and how long the check took.
    static func recheck(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let history = try JSONDecoder().decode(History.self, from: data)
        let started = ContinuousClock.now
        let violations = Checker.check(history)
        let took = ContinuousClock.now - started
        print(
            "checked \(history.operations.count) operations on \(history.units) units in "
                + String(format: "%.2f s", Double(took.components.attoseconds) / 1e18 + Double(took.components.seconds))
        )
        for violation in violations {
            print((violation.dependsOnClocks ? "TIMING " : "SAFETY ") + violation.description)
        }
        print(violations.isEmpty ? "CHECK PASSED" : "CHECK FAILED")
        if !violations.isEmpty { throw ExitCode(1) }
    }
}
