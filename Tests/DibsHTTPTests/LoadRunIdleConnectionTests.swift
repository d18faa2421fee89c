import DibsHTTP
import XCTest

@testable import DibsLoad

/// `dibs-load` against a server that closes idle connections (`--idle-timeout`): a slow open
/// model leaves its connections idle between claims.
final class LoadRunIdleConnectionTests: XCTestCase {
    func testConnectionsClosedWhileIdleAreReplacedNotLeftUnanswered() async throws {
        let server = try TestServer(settings: { $0.idleTimeout = .milliseconds(100) })
        let (operatorKey, storefrontKey) = (server.operatorKey, server.storefrontKey)
        try await server.test(live: true) { _, port in
            var plan = LoadPlan()
            plan.port = try XCTUnwrap(port)
            plan.operatorKey = operatorKey
            plan.storefrontKey = storefrontKey
            plan.units = 5
            plan.backend = "memory"
            plan.claims = 12
            plan.shoppers = 12
            // Each connection claims every 3 / rate = 300 ms: idle past the server's 100 ms between.
            plan.connections = 3
            plan.rate = 10
            plan.progress = false
            let report = try await LoadRun.run(plan)
            XCTAssertEqual(report.claimOutcomes["no-answer"] ?? 0, 0, report.text)
            XCTAssertEqual(report.askedAgain, 0, report.text)
            XCTAssertTrue(report.passed, report.text)
        }
    }
}
