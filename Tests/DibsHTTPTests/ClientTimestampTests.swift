import DibsClient
import DibsCore
import DibsHTTP
import XCTest

/// The load generator reads the server's timestamps itself (to map server times onto its
/// clock): it must read back exactly what the server writes.
final class ClientTimestampTests: XCTestCase {
    func testTheClientReadsTheServersTimestampsBack() throws {
        for milliseconds: Int64 in [0, 1, 951_782_400_000, 1_795_000_000_123, 4_102_444_799_999, 1_709_164_800_000] {
            let written = RFC3339.format(Timestamp(milliseconds: milliseconds))
            let fields = ResponseFields(Array(#"{"expires_at":"\#(written)"}"#.utf8))
            XCTAssertEqual(fields.milliseconds("expires_at"), milliseconds, written)
        }
    }

    func testOtherShapesAreNotTimestamps() {
        for text in ["2026-11-27 09:30:00.000Z", "2026-13-27T09:30:00.000Z", "2026-11-27T09:30:00.00xZ", ""] {
            XCTAssertNil(ResponseFields(Array(#"{"t":"\#(text)"}"#.utf8)).milliseconds("t"), text)
        }
        XCTAssertNil(ResponseFields(Array(#"{"t":5}"#.utf8)).milliseconds("t"))
    }
}
