import DibsCore
import DibsPostgres
import Foundation
import LeaseStoreConformance
import PostgresNIO
import Testing

@Suite("Two processes claiming one Postgres drop")
struct TwoProcessTests {
    struct StampedeReport: Decodable {
        let held: Int
        let waitlisted: Int
        let soldOut: Int
        let other: Int
        let heldUnits: [Int]
    }

    @Test func twoDibsProcessesNeverShareAUnit() async throws {
        let url = try TestPostgres.url()
        let drop = try DropID("two-proc-\(UInt32.random(in: 0...UInt32.max))")
        try await TestPostgres.withClient { client in
            try await PostgresLeaseStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger)
                .createDrop(
                    DropConfig(id: drop, units: 50, opensAt: SystemClock().now().adding(.seconds(-1))))
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("dibs").path
        #expect(FileManager.default.isExecutableFile(atPath: binary), "build the dibs product first: \(binary)")

        async let first = Self.stampede(binary, url: url, drop: drop, prefix: "left")
        async let second = Self.stampede(binary, url: url, drop: drop, prefix: "right")
        let reports = try await [first, second]

        let units = reports.flatMap(\.heldUnits)
        #expect(units.count == 50, "two processes together hold \(units.count) of 50 units")
        #expect(Set(units) == Set(0..<50), "a unit was given twice or not at all: \(units.sorted())")
        #expect(reports.allSatisfy { $0.held > 0 }, "one process got nothing: the test did not overlap them")
        #expect(reports.map(\.other) == [0, 0])
        try await TestPostgres.withClient { client in
            let snapshot = try await PostgresLeaseStore(
                client: client, server: try TestPostgres.url(), logger: TestPostgres.logger
            ).inspect(drop: drop)
            #expect(snapshot.held == 50 && snapshot.free == 0)
            #expect(snapshot.waitlisted == reports.map(\.waitlisted).reduce(0, +))
        }
    }

    static func stampede(_ binary: String, url: PostgresURL, drop: DropID, prefix: String) async throws
        -> StampedeReport
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "stampede", "--store", "postgres", "--drop", drop.rawValue, "--claims", "1000", "--concurrency", "200",
            "--shopper-prefix", prefix, "--json",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["DIBS_POSTGRES_URL"] = "postgres://\(url.user)@\(url.host):\(url.port)/\(url.database)"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SetupError(description: "dibs stampede exited \(process.terminationStatus)")
        }
        return try JSONDecoder().decode(StampedeReport.self, from: data)
    }
}
