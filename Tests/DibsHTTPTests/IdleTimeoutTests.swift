import DibsHTTP
import Foundation
import XCTest

/// Connections that go quiet are closed after the idle timeout; a request being answered is
/// not cut off by it.
final class IdleTimeoutTests: XCTestCase {
    func testQuietConnectionsAreClosed() async throws {
        XCTAssertEqual(ServiceSettings(defaultBackend: "memory").idleTimeout, .seconds(60))
        let server = try TestServer(settings: { $0.idleTimeout = .milliseconds(200) })
        try await server.test(live: true) { _, port in
            let port = try XCTUnwrap(port)
            // `exchange` fails unless the server closes the connection within its limit.
            let silent = try await RawConnection.exchange("", port: port, limit: .seconds(5))
            XCTAssertEqual(silent, "")
            // A head sent part-way, then nothing (a slow client, or one holding connections).
            let partial = try await RawConnection.exchange(
                "POST /v1/drops/d/claims HTTP/1.1\r\nHost: x\r\n", port: port, limit: .seconds(5))
            XCTAssertEqual(partial, "")
            // Kept alive after its answer, then closed once idle.
            let answered = try await RawConnection.exchange(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", port: port, limit: .seconds(5))
            XCTAssertTrue(answered.hasPrefix("HTTP/1.1 200"), answered)
            XCTAssertFalse(answered.lowercased().contains("connection: close"), answered)
        }
    }

    /// A claim the store answers after longer than the idle timeout still gets its answer.
    func testASlowAnswerIsNotCutOff() async throws {
        let server = try TestServer(
            settings: { $0.idleTimeout = .milliseconds(100) }, store: GatedStore(claimDelay: .milliseconds(400)))
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            try await api.createDrop("slow", units: 5)
            let answers = try await RawConnection.exchange(
                EventLoopClaimTests.claim("slow-1", "bob", apiKey: key, drop: "slow"), port: try XCTUnwrap(port),
                limit: .seconds(5))
            XCTAssertTrue(answers.hasPrefix("HTTP/1.1 201"), answers)
        }
    }

    /// `dibs serve` refuses an idle timeout, or any other number, out of its range, naming the flag.
    func testServeRefusesNumbersOutOfRange() throws {
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        for (argument, named) in [
            ("--idle-timeout=-1", "--idle-timeout"), ("--idle-timeout=100000", "--idle-timeout"),
            ("--max-body-bytes=10", "--max-body-bytes"), ("--port=70000", "--port"),
        ] {
            let serve = Process()
            serve.executableURL = directory.appendingPathComponent("dibs")
            serve.arguments = ["serve", "--store", "memory", argument]
            let errors = Pipe()
            serve.standardError = errors
            serve.standardOutput = Pipe()
            try serve.run()
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            serve.waitUntilExit()
            XCTAssertNotEqual(serve.terminationStatus, 0, argument)
            XCTAssertTrue(text.contains("\(named) must be a whole number from"), "\(argument): \(text)")
        }
    }
}
