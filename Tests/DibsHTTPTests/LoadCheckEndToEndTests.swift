import DibsApp
import DibsCheck
import DibsCore
import DibsHTTP
import DibsPostgres
import DibsRedis
import Foundation
import Hummingbird
import HummingbirdTesting
import LeaseStoreConformance
import Logging
import XCTest

@testable import DibsLoad

/// `dibs-load` end to end: it catches the oversell of a deliberately racy claim handler, and
/// passes against `dibs serve` on Redis and on Postgres.
final class LoadCheckEndToEndTests: XCTestCase {
    /// For a run that did not pass: every operation of the shoppers its findings name (a
    /// finding seen once, in CI, can then be read whole), and the whole history written to a
    /// file for `dibs-load --check-history`. Empty for a run that passed.
    static func failureContext(_ report: LoadReport) -> String {
        guard !report.passed, let history = report.checkedHistory else { return "" }
        // A witness reads "#id shopper [invoke, response] result".
        let shoppers = Set(
            report.safetyViolations.flatMap(\.witnesses).compactMap { $0.split(separator: " ").dropFirst().first }
                .map(String.init))
        let operations = history.operations.filter { shoppers.contains($0.shopper) }.map { "  \($0)" }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dibs-history-\(report.drop.id)-\(UInt32.random(in: 0...UInt32.max)).json")
        let written = (try? JSONEncoder().encode(history).write(to: file)) != nil
        return "\nevery operation of \(shoppers.sorted().joined(separator: ", ")):\n"
            + operations.joined(separator: "\n") + (written ? "\nhistory: \(file.path)" : "")
    }

    /// A tokenless replay matches the first answer whichever of the two came first (CI found
    /// the fresh answer on the in-run retry and the replay on the original); anything else
    /// that differs is a finding.
    func testATokenlessReplayMatchesItsClaimEitherWay() {
        let fresh = Array(
            #"{"claim":"d.7","state":"held","unit":23,"fence":120,"expires_at":"2026-11-27T12:12:23.580Z","hold_token":"613d"}"#
                .utf8)
        let replay = Array(
            #"{"claim":"d.7","state":"held","unit":23,"fence":120,"expires_at":"2026-11-27T12:12:23.580Z","hold_token":null,"replayed":true}"#
                .utf8)
        let otherFence = Array(
            #"{"claim":"d.7","state":"held","unit":23,"fence":121,"hold_token":null,"replayed":true}"#.utf8)
        let otherToken = Array(#"{"claim":"d.7","state":"held","unit":23,"fence":120,"hold_token":"99"}"#.utf8)
        XCTAssertTrue(LoadReport.sameClaim(fresh, replay))
        XCTAssertTrue(LoadReport.sameClaim(replay, fresh))
        XCTAssertFalse(LoadReport.sameClaim(fresh, otherFence))
        XCTAssertFalse(LoadReport.sameClaim(otherFence, fresh))
        XCTAssertFalse(LoadReport.sameClaim(fresh, otherToken), "two tokens for one key")
    }

    func testCatchesTheOversellOfARacyHandler() async throws {
        let clock = ManualClock(start: SystemClock().now())
        let server = try TestServer(store: RacyLeaseStore(clock: clock), clock: clock)
        let app = Application(
            router: DibsHTTPServer.router(service: server.service, settings: server.settings),
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)))
        let (operatorKey, storefrontKey) = (server.operatorKey, server.storefrontKey)
        try await app.test(.live) { client in
            var plan = LoadPlan()
            plan.port = try XCTUnwrap(client.port)
            plan.operatorKey = operatorKey
            plan.storefrontKey = storefrontKey
            plan.units = 10
            plan.backend = "racy"
            plan.claims = 600
            plan.shoppers = 600
            plan.connections = 32
            plan.progress = false
            let report = try await LoadRun.run(plan)
            XCTAssertFalse(report.passed, report.text)
            let broken = Set(report.safetyViolations.map(\.invariant))
            XCTAssertTrue(
                broken.contains("no two leases on a unit overlap"),
                "the oversell was not named: \(broken)\n\(report.text)")
            XCTAssertFalse(report.safetyViolations.first?.witnesses.isEmpty ?? true, "a violation names its witnesses")
            // What a failed run adds to its message: the named shoppers' operations, the history's file.
            let context = Self.failureContext(report)
            let shopper = try XCTUnwrap(
                report.safetyViolations.first?.witnesses.first?.split(separator: " ").dropFirst().first)
            XCTAssertTrue(context.contains("every operation of") && context.contains(" \(shopper) ["), context)
            let path = try XCTUnwrap(context.components(separatedBy: "history: ").last)
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), context)
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    func testPassesAgainstDibsServeOnRedisAndPostgres() async throws {
        let (server, operatorKey, storefrontKey) = try await Self.serverWithoutRateLimits()
        defer { server.stop() }
        for backend in ["redis", "postgres"] {
            // Long holds: every unit is held once, and the winners who do not release confirm.
            var plan = Self.plan(server, operatorKey, storefrontKey)
            plan.backend = backend
            plan.units = 50
            plan.claims = 1_500
            plan.shoppers = 500
            plan.connections = 32
            plan.scenario = .checkout
            plan.releaseShare = 0
            plan.abandonShare = 0
            plan.confirmDelay = .milliseconds(100)
            plan.progress = false
            let report = try await LoadRun.run(plan)
            XCTAssertTrue(report.passed, "\(backend):\n\(report.text)\(Self.failureContext(report))")
            XCTAssertEqual(report.claimOutcomes["held"], 50, "\(backend): \(report.claimOutcomes)")
            XCTAssertEqual(report.confirmOutcomes["confirmed"], 50, "\(backend): \(report.confirmOutcomes)")
            XCTAssertGreaterThan(report.retries, 0)
            XCTAssertEqual(report.drop.backend, backend)
        }
    }

    /// One-second holds, winners who release or abandon: units come back (by release and by
    /// expiry) and are claimed again, and the history with its releases and mapped expiries
    /// still checks.
    func testUnitsThatComeBackAreCheckedOnRedisAndPostgres() async throws {
        let (server, operatorKey, storefrontKey) = try await Self.serverWithoutRateLimits()
        defer { server.stop() }
        for backend in ["redis", "postgres"] {
            var plan = Self.plan(server, operatorKey, storefrontKey)
            plan.backend = backend
            plan.units = 20
            plan.holdTTLSeconds = 1
            plan.claims = 3_000
            plan.shoppers = 600
            plan.connections = 32
            plan.rate = 500  // six seconds of claims: holds expire while claims still come
            plan.scenario = .checkout
            plan.releaseShare = 0.3
            plan.abandonShare = 0.3
            plan.confirmDelay = .milliseconds(200)
            plan.progress = false
            let report = try await LoadRun.run(plan)
            // The checks, not the schedule (a debug server may not keep the rate).
            XCTAssertEqual(report.safetyViolations.count, 0, "\(backend):\n\(report.text)")
            XCTAssertEqual(report.unresolved, 0, "\(backend):\n\(report.text)")
            XCTAssertGreaterThan(report.claimOutcomes["held"] ?? 0, 20, "units came back: \(report.claimOutcomes)")
            XCTAssertGreaterThan(report.releaseOutcomes["released"] ?? 0, 0, "\(report.releaseOutcomes)")
            XCTAssertLessThanOrEqual(report.confirmOutcomes["confirmed"] ?? 0, 20)
            // Every grant's expiry was mapped onto the client clock, within a tight window.
            XCTAssertEqual(report.clockSamples, report.claimOutcomes["held"] ?? 0)
            XCTAssertLessThan(try XCTUnwrap(report.clockUncertaintyMs), 100)
            XCTAssertGreaterThan(report.checkedOperations, report.claims)
        }
    }

    /// With a waitlist, released and expired units go to waitlisted claims: the run finds
    /// those promotions afterwards and the history with them still checks.
    func testPromotionsFromTheWaitlistAreChecked() async throws {
        let (server, operatorKey, storefrontKey) = try await Self.serverWithoutRateLimits()
        defer { server.stop() }
        for backend in ["redis", "postgres"] {
            var plan = Self.plan(server, operatorKey, storefrontKey)
            plan.backend = backend
            plan.units = 30
            plan.waitlistCapacity = 40
            plan.holdTTLSeconds = 1
            plan.claims = 3_000
            plan.shoppers = 1_000
            plan.connections = 32
            plan.rate = 1_000  // three seconds: holds expire and promote while claims come
            plan.scenario = .checkout
            plan.progress = false
            let report = try await LoadRun.run(plan)
            XCTAssertEqual(report.safetyViolations.count, 0, "\(backend):\n\(report.text)")
            XCTAssertEqual(report.unresolved, 0, "\(backend):\n\(report.text)")
            XCTAssertGreaterThan(report.claimOutcomes["waitlisted"] ?? 0, 0, report.text)
            XCTAssertGreaterThan(report.promoted, 0, "\(backend):\n\(report.text)")
        }
    }

    /// Confirms sent half a second after their lease expired are all refused.
    func testZombieShoppersAreRefused() async throws {
        let (server, operatorKey, storefrontKey) = try await Self.serverWithoutRateLimits()
        defer { server.stop() }
        var plan = Self.plan(server, operatorKey, storefrontKey)
        plan.backend = "redis"
        plan.units = 300
        plan.holdTTLSeconds = 1
        plan.claims = 600
        plan.shoppers = 600
        plan.connections = 16
        plan.scenario = .checkout
        plan.fault = .zombieShopper
        plan.progress = false
        let report = try await LoadRun.run(plan)
        XCTAssertTrue(report.passed, report.text + Self.failureContext(report))
        XCTAssertGreaterThan(report.zombieOutcomes.values.reduce(0, +), 0, report.text)
        XCTAssertEqual(Set(report.zombieOutcomes.keys), ["lease-expired"], report.text)
    }

    /// kill -9 of the server mid-run: requests in flight get no answer, the generator
    /// reconnects to the restarted server, asks about the unknowns with the same keys, and
    /// the history still checks.
    func testKillServerFaultPasses() async throws {
        _ = try LocalServers.required("DIBS_POSTGRES_URL")
        _ = try LocalServers.required("DIBS_REDIS_URL")
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        let port = try LocalServers.freePort()
        let dibs = directory.appendingPathComponent("dibs").path
        let (operatorKey, storefrontKey) = try await LiveServer.freshKeys()
        var plan = LoadPlan()
        plan.serveCommand = [
            dibs, "serve", "--port", String(port), "--rate-per-ip", "off", "--rate-per-key", "off",
            "--rate-per-shopper", "off", "--log-level", "error",
        ]
        plan.fault = .killServer
        plan.operatorKey = operatorKey
        plan.storefrontKey = storefrontKey
        plan.backend = "redis"
        plan.units = 200
        plan.claims = 3_000
        plan.shoppers = 1_000
        plan.connections = 64
        plan.scenario = .checkout
        plan.requestTimeout = .seconds(3)
        plan.progress = false
        let report = try await LoadRun.run(plan)
        XCTAssertTrue(report.passed, report.text + Self.failureContext(report))
        XCTAssertEqual(report.fault, "kill-server")
        XCTAssertEqual(report.unresolved, 0, report.text)
    }

    /// With no hold-token key in the environment, the servers a run starts share one for the
    /// run, as the instances of a deployment do: a claim retried after a kill -9 and a restart
    /// still gets its token (a server with a key of its own would replay it without).
    func testAServerUnderTestRestartedReplaysTokens() async throws {
        _ = try LocalServers.required("DIBS_POSTGRES_URL")
        _ = try LocalServers.required("DIBS_REDIS_URL")
        let saved = ProcessInfo.processInfo.environment["DIBS_HOLD_TOKEN_KEY"]
        unsetenv("DIBS_HOLD_TOKEN_KEY")
        defer { if let saved { setenv("DIBS_HOLD_TOKEN_KEY", saved, 1) } }
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        let port = try LocalServers.freePort()
        let server = ServerUnderTest(command: [
            directory.appendingPathComponent("dibs").path, "serve", "--port", String(port), "--rate-per-ip", "off",
            "--rate-per-shopper", "off", "--log-level", "error",
        ])
        try server.start()
        defer { server.stop() }
        let (operatorKey, storefrontKey) = try await LiveServer.freshKeys()
        let api = API(operatorKey: operatorKey, storefrontKey: storefrontKey, send: LiveServer(port: port).send)
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let created = try await api.createDrop("restart-\(tag)", units: 2, extra: #","backend":"redis""#)
        XCTAssertEqual(created.status, 201, created.text)
        let first = try await api.claim("restart-\(tag)", user: "shopper-\(tag)", key: "kept")
        XCTAssertEqual(first.status, 201, first.text)
        XCTAssertNotNil(first.string("hold_token"))

        server.kill()
        try server.start()
        let again = try await api.claim("restart-\(tag)", user: "shopper-\(tag)", key: "kept")
        XCTAssertEqual(again.text, first.text, "the restarted server replays the first answer, token and all")
    }

    /// The run starts its own Redis and Postgres for the server, kills Redis (and starts it
    /// again) or pauses Postgres mid-run; the history still checks and nothing stays unknown.
    func testRestartRedisAndPausePostgresFaultsPass() async throws {
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        let dibs = directory.appendingPathComponent("dibs").path
        for (fault, backend) in [(LoadPlan.Fault.restartRedis, "redis"), (.pausePostgres, "postgres")] {
            var plan = LoadPlan()
            plan.serveCommand = [
                dibs, "serve", "--port", String(try LocalServers.freePort()), "--rate-per-ip", "off",
                "--rate-per-key", "off", "--rate-per-shopper", "off", "--log-level", "error",
            ]
            plan.fault = fault
            plan.backend = backend
            plan.units = 100
            plan.holdTTLSeconds = 2
            plan.claims = 3_000
            plan.shoppers = 1_000
            plan.connections = 32
            plan.scenario = .checkout
            plan.requestTimeout = .seconds(5)
            plan.progress = false
            let report = try await LoadRun.run(plan)
            XCTAssertTrue(report.passed, "\(fault):\n\(report.text)\(Self.failureContext(report))")
            XCTAssertEqual(report.fault, fault.rawValue)
            XCTAssertEqual(report.unresolved, 0, report.text)
            XCTAssertEqual(report.drop.backend, backend)
            XCTAssertGreaterThan(report.claimOutcomes["held"] ?? 0, 0, report.text)
            XCTAssertGreaterThan(report.confirmOutcomes["confirmed"] ?? 0, 0, report.text)
        }
    }

    /// A live `dibs serve` on the dev Redis and Postgres with no per-IP or per-shopper limit
    /// (the generator is one address and its shoppers come back).
    static func serverWithoutRateLimits() async throws -> (LiveServer, String, String) {
        try await LiveServer.startOnDevServers { configuration in
            configuration.settings.perIPLimit = nil
            configuration.settings.perShopperLimit = nil
        }
    }

    /// A plan against that server, with its keys and no progress line.
    static func plan(_ server: LiveServer, _ operatorKey: String, _ storefrontKey: String) -> LoadPlan {
        var plan = LoadPlan()
        plan.port = server.port
        plan.operatorKey = operatorKey
        plan.storefrontKey = storefrontKey
        plan.progress = false
        return plan
    }
}
