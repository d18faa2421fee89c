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

    /// A body sent a byte at a time, each byte well within the idle timeout, is cut off once
    /// the whole body has taken longer than it; a body sent at once is answered.
    func testATrickledBodyIsCutOff() async throws {
        let server = try TestServer(settings: { $0.idleTimeout = .milliseconds(300) })
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            let port = try XCTUnwrap(port)
            try await api.createDrop("trickle", units: 5)
            let body = #"{"user":"bob-the-slow-shopper-of-the-trickle-drop"}"#
            for path in ["/v1/drops/trickle/claims", "/v1/claims/trickle.1/release"] {
                let head =
                    "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                    + "Idempotency-Key: slow-\(path.count)\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n"
                // 50 bytes, one each 50 ms: 2.5 s in all, against a 300 ms limit.
                let (answers, closedPartWay) = try await RawConnection.trickle(
                    head: head, body: body, every: .milliseconds(50), port: port)
                XCTAssertTrue(closedPartWay, "\(path): \(answers)")
                XCTAssertEqual(answers, "", path)
            }
            let whole = try await RawConnection.exchange(
                EventLoopClaimTests.claim("quick-1", "bob", apiKey: key, drop: "trickle"), port: port,
                limit: .seconds(5))
            XCTAssertTrue(whole.hasPrefix("HTTP/1.1 201"), whole)
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
