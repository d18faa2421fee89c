import DibsCore
import DibsHTTP
import HTTPTypes
import Hummingbird
import XCTest

/// Every way a request can be wrong gets a clear 4xx problem: never a 500, never a crash.
final class RequestErrorTests: XCTestCase {
    func testBadBodies() async throws {
        try await TestServer().test { api in
            try await api.createDrop("d", units: 10)
            let cases: [(String, String)] = [
                ("{", "malformed-json"),
                ("\r", "malformed-json"),
                (" ", "malformed-json"),
                ("not json", "malformed-json"),
                (#"{"user":"a",}"#, "malformed-json"),
                (#"{"user":"a"} trailing"#, "malformed-json"),
                (#"["user"]"#, "malformed-json"),
                (#"{"user":"\u12"}"#, "malformed-json"),
                (#"{"user":"\ud800"}"#, "malformed-json"),
                ("{\"user\":\"a\u{1}b\"}", "malformed-json"),
                (#"{"user":1}"#, "invalid-field"),
                (#"{"user":{"name":"a"}}"#, "invalid-field"),
                (#"{"user":["a"]}"#, "invalid-field"),
                (#"{"user":"a","user":"b"}"#, "invalid-field"),
                (#"{}"#, "invalid-field"),
                (#"{"user":null}"#, "invalid-field"),
                (#"{"user":"a","coupon":"x"}"#, "unknown-field"),
                (#"{"user":"\#(String(repeating: "u", count: 129))"}"#, "invalid-input"),
                (#"{"user":"\#(String(repeating: "u", count: 513))"}"#, "invalid-field"),
                (#"{"user":"a\u0085b"}"#, "invalid-input"),
                (#"{"user":""}"#, "invalid-input"),
            ]
            for (index, (body, problem)) in cases.enumerated() {
                let reply = try await api.call(.post, "/v1/drops/d/claims", idempotencyKey: "bad-\(index)", body: body)
                XCTAssertEqual(reply.status, 400, body)
                XCTAssertEqual(reply.problem, problem, "\(body): \(reply.text)")
            }
            // Invalid UTF-8 is malformed too.
            let reply = try await api.send(
                .post, "/v1/drops/d/claims",
                [
                    .authorization: "Bearer \(api.storefrontKey)", .contentType: "application/json",
                    HTTPField.Name("Idempotency-Key")!: "utf8",
                ], Array(#"{"user":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
            XCTAssertEqual(reply.status, 400)
            XCTAssertEqual(reply.problem, "malformed-json")
        }
    }

    func testBodyOverTheCap() async throws {
        try await TestServer(settings: { $0.maximumBodyBytes = 256 }).test { api in
            try await api.createDrop("d", units: 1)
            let big = #"{"user":"\#(String(repeating: "x", count: 400))"}"#
            let reply = try await api.call(.post, "/v1/drops/d/claims", idempotencyKey: "big", body: big)
            XCTAssertEqual(reply.status, 413)
            XCTAssertEqual(reply.problem, "payload-too-large")
        }
    }

    func testBadHeaders() async throws {
        try await TestServer().test { api in
            try await api.createDrop("d", units: 10)
            let noKey = try await api.call(.post, "/v1/drops/d/claims", body: #"{"user":"a"}"#)
            XCTAssertEqual(noKey.status, 400)
            XCTAssertEqual(noKey.problem, "missing-idempotency-key")

            let badKey = try await api.call(
                .post, "/v1/drops/d/claims", idempotencyKey: "has space", body: #"{"user":"a"}"#)
            XCTAssertEqual(badKey.status, 400)
            XCTAssertEqual(badKey.problem, "invalid-header")

            let longKey = try await api.call(
                .post, "/v1/drops/d/claims", idempotencyKey: String(repeating: "k", count: 256), body: #"{"user":"a"}"#)
            XCTAssertEqual(longKey.problem, "invalid-header")

            let form = try await api.call(
                .post, "/v1/drops/d/claims", idempotencyKey: "form", body: "user=a",
                contentType: "application/x-www-form-urlencoded")
            XCTAssertEqual(form.status, 415)
            XCTAssertEqual(form.problem, "unsupported-media-type")

            let withCharset = try await api.call(
                .post, "/v1/drops/d/claims", idempotencyKey: "charset", body: #"{"user":"a"}"#,
                contentType: "application/json; charset=utf-8")
            XCTAssertEqual(withCharset.status, 201)

            // The media type is compared without case, spaces or parameters, and exactly.
            for (index, type) in [
                "APPLICATION/Json", " application/json ;charset=utf-8", "application/json\t",
                #"application/json; Charset="UTF-8""#, "application/json; v=2; charset=utf-8 ", "application/json;",
            ].enumerated() {
                let reply = try await api.call(
                    .post, "/v1/drops/d/claims", idempotencyKey: "json-\(index)", body: #"{"user":"j\#(index)"}"#,
                    contentType: type)
                XCTAssertNotEqual(reply.problem, "unsupported-media-type", type)
            }
            // A body in another charset is refused rather than misread as UTF-8.
            for (index, type) in [
                "application/jsonx", "application/js", "text/json", "application/json+x;", "",
                "application/json; charset=utf-16", #"application/json;charset="latin1""#,
                "application/json; charset=utf-8; charset=utf-16",
            ].enumerated() {
                let reply = try await api.call(
                    .post, "/v1/drops/d/claims", idempotencyKey: "other-\(index)", body: #"{"user":"o\#(index)"}"#,
                    contentType: type)
                XCTAssertEqual(reply.problem, "unsupported-media-type", type)
            }

            let badDrop = try await api.call(
                .post, "/v1/drops/NOT_A_DROP/claims", idempotencyKey: "x", body: #"{"user":"a"}"#)
            XCTAssertEqual(badDrop.problem, "invalid-input")
            let badClaim = try await api.call(.get, "/v1/claims/not-a-claim")
            XCTAssertEqual(badClaim.problem, "invalid-input")
            let badToken = try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "t", body: #"{"hold_token":"zz"}"#)
            XCTAssertEqual(badToken.problem, "invalid-input")
            let unknownDrop = try await api.claim("nope", user: "a")
            XCTAssertEqual(unknownDrop.status, 404)
            XCTAssertEqual(unknownDrop.problem, "unknown-drop")
        }
    }

    func testAuthentication() async throws {
        try await TestServer().test { api in
            try await api.createDrop("d", units: 10)
            for key in [
                API.Key.none, .raw("Basic abc"), .raw("Bearer nope"),
                .raw("Bearer dibs_000000000000_" + String(repeating: "0", count: 64)),
            ] {
                let reply = try await api.call(.get, "/v1/drops/d", key: key)
                XCTAssertEqual(reply.status, 401)
                XCTAssertEqual(reply.problem, "unauthorized")
                XCTAssertEqual(reply.headers[.wwwAuthenticate], "Bearer")
            }
            // The right id with the wrong secret is refused as well.
            let forged = String(api.storefrontKey.dropLast(4)) + "0000"
            do {
                let reply = try await api.call(.get, "/v1/drops/d", key: .raw("Bearer \(forged)"))
                XCTAssertEqual(reply.status, 401)
            }

            let scope = try await api.call(
                .post, "/v1/admin/drops", key: .storefront, idempotencyKey: "s", body: #"{"id":"e","units":1}"#)
            XCTAssertEqual(scope.status, 403)
            XCTAssertEqual(scope.problem, "insufficient-scope")
            // The scheme's name is case-insensitive.
            for scheme in ["bearer", "BEARER", "bEaReR"] {
                let reply = try await api.call(.get, "/v1/drops/d", key: .raw("\(scheme) \(api.storefrontKey)"))
                XCTAssertEqual(reply.status, 200, scheme)
            }
            for scheme in ["Bearer\t", "Bearr ", "Bearerx", "Bearer"] {
                let reply = try await api.call(.get, "/v1/drops/d", key: .raw(scheme + api.storefrontKey))
                XCTAssertEqual(reply.status, 401, scheme)
            }
            // An operator key may do what a storefront does.
            do {
                let reply = try await api.call(.get, "/v1/drops/d", key: .operator)
                XCTAssertEqual(reply.status, 200)
            }
        }
    }

    func testRevokedKeyStopsWorkingAfterTheCache() async throws {
        let server = try TestServer(settings: { $0.apiKeyCacheFor = .seconds(5) })
        try await server.test { api in
            try await api.createDrop("d", units: 1)
            do {
                let reply = try await api.call(.get, "/v1/drops/d")
                XCTAssertEqual(reply.status, 200)
            }
            XCTAssertTrue(server.keys.revoke(id: server.storefrontKeyID, at: server.clock.now()))
            server.clock.advance(by: .seconds(6))
            let refused = try await api.call(.get, "/v1/drops/d")
            XCTAssertEqual(refused.status, 401)
            XCTAssertEqual(refused.problem, "unauthorized")
        }
    }

    func testUnknownPathsAndMethods() async throws {
        try await TestServer().test { api in
            let missing = try await api.call(.get, "/v2/anything", key: .none)
            XCTAssertEqual(missing.status, 404)
            XCTAssertEqual(missing.problem, "not-found")
            let method = try await api.call(.delete, "/v1/drops/d", key: .storefront)
            XCTAssertEqual(method.status, 405)
            XCTAssertEqual(method.problem, "method-not-allowed")
            XCTAssertEqual(method.headers[.allow], "GET")
        }
    }
}
