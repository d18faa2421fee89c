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

        // Both connect first and start on one "go": a process that finished before the other
        // started would prove nothing about two processes racing.
        let left = try StampedeProcess(binary, url: url, drop: drop, prefix: "left")
        let right = try StampedeProcess(binary, url: url, drop: drop, prefix: "right")
        try await left.ready()
        try await right.ready()
        left.go()
        right.go()
        let reports = try await [left.report(), right.report()]

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

}

/// One `dibs stampede --wait-for-go` process on a Postgres drop.
final class StampedeProcess: Sendable {
    private let process = Process()
    private let stdin = Pipe()
    private let stdout = Pipe()
    private let stderr = Pipe()

    init(_ binary: String, url: PostgresURL, drop: DropID, prefix: String) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "stampede", "--store", "postgres", "--drop", drop.rawValue, "--claims", "1000", "--concurrency", "200",
            "--shopper-prefix", prefix, "--json", "--wait-for-go",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["DIBS_POSTGRES_URL"] = "postgres://\(url.user)@\(url.host):\(url.port)/\(url.database)"
        process.environment = environment
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
    }

    /// Waits for the "ready" line on stderr (logs may come before it).
    func ready() async throws {
        let handle = stderr.fileHandleForReading
        let seen = await Task.detached {
            var text = ""
            while !text.contains("ready\n") {
                let chunk = handle.availableData
                if chunk.isEmpty { return text }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return "ready\n"
        }.value
        guard seen == "ready\n" else { throw SetupError(description: "dibs stampede never got ready: \(seen)") }
    }

    func go() { stdin.fileHandleForWriting.write(Data("go\n".utf8)) }

    func report() async throws -> TwoProcessTests.StampedeReport {
        let handle = stdout.fileHandleForReading
        let data = await Task.detached { handle.readDataToEndOfFile() }.value
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SetupError(description: "dibs stampede exited \(process.terminationStatus)")
        }
        return try JSONDecoder().decode(TwoProcessTests.StampedeReport.self, from: data)
    }
}
