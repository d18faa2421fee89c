import HTTPTypes
import NIOHTTP1
import NIOHTTPTypesHTTP1
import XCTest

@testable import DibsHTTP

/// The pure parts of the event-loop answer: which requests it may take, its Date header, and
/// the request conversion of the HTTP/1.1 channel.
final class ClaimChannelHandlerTests: XCTestCase {
    func testOnlyAPlainClaimPathIsTaken() {
        func drop(_ method: HTTPRequest.Method, _ path: String, connection: String? = nil) -> String? {
            var head = HTTPRequest(method: method, scheme: nil, authority: "x", path: path)
            if let connection { head.headerFields[.connection] = connection }
            return ClaimChannelHandler.claimedDrop(head).map(String.init)
        }
        XCTAssertEqual(drop(.post, "/v1/drops/shoes/claims"), "shoes")
        XCTAssertEqual(drop(.post, "/v1/drops/shoes/claims", connection: "Keep-Alive"), "shoes")
        XCTAssertNil(drop(.post, "/v1/drops/shoes/claims", connection: "close"), "the router closes after it")
        XCTAssertNil(drop(.get, "/v1/drops/shoes/claims"))
        XCTAssertNil(drop(.post, "/v1/drops/shoes/claims?x=1"))
        XCTAssertNil(drop(.post, "/v1/drops/shoes/claims/"))
        XCTAssertNil(drop(.post, "/v1/drops//claims"))
        XCTAssertNil(drop(.post, "/v1/drops/a/b/claims"))
        XCTAssertNil(drop(.post, "/v1/claims/shoes.1/confirm"))
    }

    func testTheCodecMakesTheRequestsNIOsCodecMakes() throws {
        for target in [
            "/v1/drops/shoes/claims", "/v1/drops/a?b=c&d", "/a%20b/c", "/", "//double", "http://example.com/x?y=1",
            "http://example.com", "*", "example.com:443",
        ] {
            var headers = HTTPHeaders([("Host", "dibs.example"), ("Cookie", "a=1; b=2"), ("X-Thing", "one")])
            headers.add(name: "X-Thing", value: "two")
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target, headers: headers)
            let expected = try? HTTPRequest(head, secure: false, splitCookie: false)
            let made = try? HTTP1ServerCodec.request(head)
            XCTAssertEqual(made, expected, target)
            XCTAssertEqual(made?.path, expected?.path, target)
            XCTAssertEqual(made?.authority, "dibs.example", target)
        }
        let odd = HTTPRequestHead(version: .http1_1, method: .RAW(value: "BREW"), uri: "/pot", headers: [:])
        XCTAssertEqual(try? HTTP1ServerCodec.request(odd), try? HTTPRequest(odd, secure: false, splitCookie: false))
    }

    /// HTTP/1.0 ends the connection after the answer unless asked to keep it; the request says
    /// so with `Connection: close`, the one word the server closes after.
    func testARequestThatDoesNotKeepTheConnectionSaysClose() throws {
        func connection(_ version: HTTPVersion, _ value: String?) throws -> String? {
            let headers = HTTPHeaders(value.map { [("Host", "x"), ("Connection", $0)] } ?? [("Host", "x")])
            let head = HTTPRequestHead(version: version, method: .GET, uri: "/healthz", headers: headers)
            return try HTTP1ServerCodec.request(head).headerFields[.connection]
        }
        XCTAssertEqual(try connection(.http1_0, nil), "close")
        XCTAssertEqual(try connection(.http1_0, "keep-alive"), "keep-alive")
        XCTAssertEqual(try connection(.http1_0, "Keep-Alive"), "Keep-Alive")
        XCTAssertEqual(try connection(.http1_1, nil), nil)
        XCTAssertEqual(try connection(.http1_1, "Close"), "close")
        XCTAssertEqual(try connection(.http1_1, "keep-alive"), "keep-alive")
        let absolute = HTTPRequestHead(version: .http1_0, method: .GET, uri: "http://x/healthz", headers: [:])
        XCTAssertEqual(try HTTP1ServerCodec.request(absolute).headerFields[.connection], "close")
    }

    func testTheHeadersReadInOnePassAreTheLookupsAnswers() {
        var head = HTTPRequest(method: .post, scheme: "http", authority: "x", path: "/v1/drops/a/claims")
        head.headerFields.append(HTTPField(name: HTTPField.Name("authorization")!, value: "Bearer k"))
        head.headerFields.append(HTTPField(name: HTTPField.Name("IDEMPOTENCY-KEY")!, value: "one"))
        head.headerFields.append(HTTPField(name: .accept, value: "*/*"))
        head.headerFields.append(HTTPField(name: HTTPField.Name("Idempotency-Key")!, value: "two"))
        let request = ClaimChannelHandler.apiRequest(head, body: nil, remoteAddress: nil)
        XCTAssertEqual(request.authorization, head.headerFields[.authorization])
        XCTAssertEqual(request.idempotencyKey, head.headerFields[DibsHTTPServer.idempotencyKeyField])
        XCTAssertEqual(request.idempotencyKey, "one, two")
        XCTAssertNil(request.contentType)
        XCTAssertEqual(request.path, "/v1/drops/a/claims")
        XCTAssertEqual(request.body, [])
    }

    func testTheDateHeaderIsIMFFixdate() {
        XCTAssertEqual(HTTPDate.format(epochSeconds: 784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 1_795_790_096), "Fri, 27 Nov 2026 14:34:56 GMT")
    }
}
