import XCTest

@testable import DibsHTTP

/// Requests that are not HTTP/1.1, over a real socket: each gets a problem with its own type,
/// after the answers of the requests before it, and the connection closes.
final class UnreadableRequestTests: XCTestCase {
    /// The answers in `text`, each as its status line's code, headers and body.
    private static func answers(_ text: String) -> [(status: String, headers: String, body: String)] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { answer in
            let parts = answer.components(separatedBy: "\r\n\r\n")
            return (String(answer.prefix(3)), parts[0].lowercased(), parts.dropFirst().joined(separator: "\r\n\r\n"))
        }
    }

    private static func assertProblem(
        _ answer: (status: String, headers: String, body: String), _ status: String, _ type: String,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(answer.status, status, file: file, line: line)
        XCTAssertTrue(
            answer.headers.contains("content-type: application/problem+json"), answer.headers, file: file, line: line)
        XCTAssertTrue(answer.headers.contains("connection: close"), answer.headers, file: file, line: line)
        XCTAssertTrue(answer.body.contains(#""type":"urn:dibs:problem:\#(type)""#), answer.body, file: file, line: line)
        XCTAssertTrue(answer.body.contains(#""status":\#(status)"#), answer.body, file: file, line: line)
    }

    func testEachUnreadableRequestGetsItsProblemAndTheConnectionCloses() async throws {
        try await TestServer().test(live: true) { api, port in
            let port = try XCTUnwrap(port)
            let cases: [(String, String, String)] = [
                ("HELLO\r\n\r\n", "400", "malformed-request"),
                ("GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", "400", "malformed-request"),
                (
                    "POST /v1/drops/d/claims HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                        + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400", "malformed-request"
                ),
                (
                    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "y", count: 100_000))\r\n\r\n",
                    "431", "headers-too-large"
                ),
            ]
            for (request, status, type) in cases {
                // `exchange` fails unless the server closes the connection.
                let answers = Self.answers(try await RawConnection.exchange(request, port: port))
                XCTAssertEqual(answers.count, 1, "\(answers)")
                if let answer = answers.first { Self.assertProblem(answer, status, type) }
            }
            // Counted by status like any answer, though no route timed them.
            let metrics = try await api.call(.get, "/metrics", key: .none).text
            XCTAssertTrue(metrics.contains(#"dibs_http_responses_total{status="400"} 3\#n"#), metrics)
            XCTAssertTrue(metrics.contains(#"dibs_http_responses_total{status="431"} 1\#n"#), metrics)
        }
    }

    /// The answer to the request that could not be read comes after the answers before it,
    /// even one the store gives late, and nothing follows it.
    func testTheProblemWaitsForTheAnswersBeforeIt() async throws {
        try await EventLoopClaimTests.withSlowDrop { key, port in
            let requests =
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                + EventLoopClaimTests.claim("slow-1", "bob", apiKey: key, drop: "slow")
                + "NOT HTTP\r\n\r\n" + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            let answers = Self.answers(try await RawConnection.exchange(requests, port: port))
            XCTAssertEqual(answers.map(\.status), ["200", "201", "400"], "\(answers)")
            if answers.count == 3 { Self.assertProblem(answers[2], "400", "malformed-request") }
        }
    }

    /// A request whose body goes wrong while a claim before it is in flight is answered after
    /// that claim, and after any request between them.
    func testAnUnreadableBodyWaitsForTheAnswersBeforeIt() async throws {
        try await EventLoopClaimTests.withSlowDrop { key, port in
            let broken =
                "POST /v1/drops/slow/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                + "Idempotency-Key: k\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\n{\"use\r\nzz\r\n"
            for (between, statuses) in [
                ("", ["201", "400"]), ("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", ["201", "200", "400"]),
            ] {
                let requests =
                    EventLoopClaimTests.claim(
                        "slow-\(statuses.count)", "bob-\(statuses.count)", apiKey: key, drop: "slow")
                    + between + broken
                let answers = Self.answers(try await RawConnection.exchange(requests, port: port))
                XCTAssertEqual(answers.map(\.status), statuses, "\(answers)")
                if let last = answers.last { Self.assertProblem(last, "400", "malformed-request") }
            }
        }
    }

    /// A body whose chunks go wrong after its head was read gets the problem too, however far
    /// its request got: held by the claim handler, read by an operation (where it was a
    /// 500), answered before its body was read (the 404, then the problem); each counted.
    func testAnUnreadableBodyGetsItsProblemAndTheConnectionCloses() async throws {
        let server = try TestServer()
        try await server.test(live: true) { api, port in
            let port = try XCTUnwrap(port)
            func chunked(_ path: String, _ key: String) -> String {
                "POST \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                    + "Idempotency-Key: k\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "5\r\n{\"use\r\nzz\r\n"
            }
            let cases: [(request: String, statuses: [String])] = [
                (chunked("/v1/drops/d/claims", server.storefrontKey), ["400"]),
                (chunked("/v1/admin/drops", server.operatorKey), ["400"]),
                (chunked("/v1/nowhere", server.operatorKey), ["404", "400"]),
            ]
            for (request, statuses) in cases {
                let answers = Self.answers(try await RawConnection.exchange(request, port: port))
                XCTAssertEqual(answers.map(\.status), statuses, "\(answers)")
                if let last = answers.last { Self.assertProblem(last, "400", "malformed-request") }
            }
            let metrics = try await api.call(.get, "/metrics", key: .none).text
            XCTAssertTrue(metrics.contains(#"dibs_http_responses_total{status="400"} 3\#n"#), metrics)
            XCTAssertTrue(metrics.contains(#"dibs_http_responses_total{status="500"} 0\#n"#), metrics)
        }
    }
}
