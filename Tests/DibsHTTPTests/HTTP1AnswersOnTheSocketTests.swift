import XCTest

@testable import DibsHTTP

/// Answers framed for their requests (NIO's encoder, behind `HTTP1ServerCodec`), over a real socket.
final class HTTP1AnswersOnTheSocketTests: XCTestCase {
    func testPipelinedAnswersAreFramedForTheirRequests() async throws {
        try await TestServer().test(live: true) { _, port in
            let port = try XCTUnwrap(port)
            let text = try await RawConnection.exchange(
                "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port)
            let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
            XCTAssertEqual(answers.map { String($0.prefix(3)) }, ["405", "200", "404"], text)
            // HEAD: the fields of a GET's answer, no body; the others have theirs.
            let bodies = answers.map { $0.components(separatedBy: "\r\n\r\n").dropFirst().joined() }
            XCTAssertEqual(bodies.first, "", text)
            XCTAssertTrue(answers.first?.lowercased().contains("content-length: ") ?? false, text)
            XCTAssertEqual(bodies.dropFirst().first, #"{"status":"ok"}"#, text)
            XCTAssertTrue(bodies.last?.contains(#""status":404"#) ?? false, text)
        }
    }
}
