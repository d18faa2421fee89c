import Foundation
import XCTest

/// A client that sends `Expect: 100-continue` and waits for `100 Continue` before its body.
final class ExpectContinueTests: XCTestCase {
    /// Reads from `fd` until `marker` arrives or the socket's receive timeout passes.
    private static func read(_ fd: Int32, until marker: String) -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(marker) {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    func testAClaimThatWaitsForContinueGetsItThenItsAnswer() async throws {
        let server = try TestServer()
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            try await api.createDrop("d", units: 5)
            let body = #"{"user":"ann"}"#
            let fd = try RawHTTP.connect(port: try XCTUnwrap(port))
            defer { close(fd) }
            // A wait the test can afford, well past the moment the server reads the head.
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            try RawHTTP.write(
                fd,
                "POST /v1/drops/d/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                    + "Idempotency-Key: c1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                    + "Expect: 100-Continue\r\nConnection: close\r\n\r\n")
            let interim = Self.read(fd, until: "\r\n\r\n")
            XCTAssertTrue(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"), interim)
            try RawHTTP.write(fd, body)
            let answer = try RawHTTP.readAll(fd)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 201"), answer)
        }
    }

    /// No `100` for HTTP/1.0 (RFC 9110), nor ahead of an earlier request's answer: the client
    /// sends after its own wait, and each request gets its one final answer, in order.
    func testNoContinueWhereItMustNotBeSent() async throws {
        try await EventLoopClaimTests.withSlowDrop { key, port in
            let body = #"{"user":"bob"}"#
            let expecting =
                "POST /v1/drops/slow/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + "Idempotency-Key: c2\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Expect: 100-continue\r\nConnection: close\r\n\r\n\(body)"
            let behindAClaim = try await RawConnection.exchange(
                EventLoopClaimTests.claim("c3", "cat", apiKey: key, drop: "slow") + expecting, port: port)
            XCTAssertFalse(behindAClaim.contains("100 Continue"), behindAClaim)
            XCTAssertEqual(behindAClaim.components(separatedBy: "HTTP/1.1 201").count, 3, behindAClaim)
            let http10 = try await RawConnection.exchange(
                "GET /healthz HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", port: port)
            XCTAssertFalse(http10.contains("100 Continue"), http10)
            XCTAssertTrue(http10.hasPrefix("HTTP/1.0 200") || http10.hasPrefix("HTTP/1.1 200"), http10)
        }
    }
}
