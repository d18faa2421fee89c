import HTTPTypes
import XCTest

@testable import DibsHTTP

/// The pure parts of the event-loop answer: which requests it may take, and its Date header.
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

    func testTheDateHeaderIsIMFFixdate() {
        XCTAssertEqual(HTTPDate.format(epochSeconds: 784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 0), "Thu, 01 Jan 1970 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT")
        XCTAssertEqual(HTTPDate.format(epochSeconds: 1_795_790_096), "Fri, 27 Nov 2026 14:34:56 GMT")
    }
}
