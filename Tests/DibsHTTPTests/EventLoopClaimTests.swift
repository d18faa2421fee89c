import DibsCore
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import XCTest

@testable import DibsHTTP

/// Claims answered by the server's channel handler, on the event loop, over a real socket:
/// the same answers as the router's, and nothing else answered there.
final class EventLoopClaimTests: XCTestCase {
    /// Sells the one unit of `drop` and has one claim answered "sold out" (by the store: the
    /// router then learns, in the background, that the drop is sold out for good).
    private static func sellOut(_ drop: String, _ api: API) async throws -> Reply {
        try await api.createDrop(drop, units: 1, extra: #","waitlist_capacity":0"#)
        let held = try await api.claim(drop, user: "ann", key: "held-key")
        let token = try XCTUnwrap(held.string("hold_token"))
        let confirmed = try await api.call(
            .post, "/v1/claims/\(drop).1/confirm", idempotencyKey: "confirm", body: #"{"hold_token":"\#(token)"}"#)
        XCTAssertEqual(confirmed.status, 200)
        let soldOut = try await api.claim(drop, user: "bob", key: "first-sold-out")
        XCTAssertEqual(soldOut.problem, "sold-out")
        return soldOut
    }

    func testClaimsGetTheRoutersAnswersFromTheEventLoop() async throws {
        try await TestServer().test(live: true) { api, _ in
            try await api.createDrop("shoes", units: 2, extra: #","waitlist_capacity":0"#)
            // The first claim of a drop goes to the router, which learns where the drop is.
            let byRouter = try await api.claim("shoes", user: "ann", key: "ann-key")
            XCTAssertEqual(byRouter.status, 201, byRouter.text)
            let afterRouter = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(afterRouter, 0)

            let replay = try await api.claim("shoes", user: "ann", key: "ann-key")
            XCTAssertEqual(replay.status, 201)
            XCTAssertEqual(replay.text, byRouter.text, "a replay is the first answer, token and all")
            XCTAssertEqual(replay.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            for name in [HTTPField.Name.contentType, .contentLength, .server] {
                XCTAssertEqual(replay.headers[name], byRouter.headers[name], "\(name)")
            }
            let date = try XCTUnwrap(replay.headers[.date])
            XCTAssertTrue(date.hasSuffix(" GMT") && date.count == 29, date)

            let held = try await api.claim("shoes", user: "bob", key: "bob-key")
            XCTAssertEqual(held.status, 201)
            XCTAssertEqual(held.int("unit").map { Set([0, 1]).contains($0) }, true)
            XCTAssertNotEqual(held.int("unit"), byRouter.int("unit"))
            XCTAssertNotNil(held.string("hold_token"))
            let soldOut = try await api.claim("shoes", user: "cat", key: "cat-key")
            XCTAssertEqual(soldOut.problem, "sold-out")
            let reused = try await api.claim("shoes", user: "dan", key: "ann-key")
            XCTAssertEqual(reused.status, 422)
            XCTAssertEqual(reused.problem, "idempotency-key-reused")
            XCTAssertEqual(reused.headers[.contentType], "application/problem+json")

            let answered = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(answered, 4, "every claim after the first was answered on the event loop")
            let metrics = try await api.call(.get, "/metrics", key: .none).text
            for line in [
                #"dibs_claims_total{outcome="held"} 2"#, #"dibs_claims_total{outcome="replayed"} 1"#,
                #"dibs_claims_total{outcome="sold-out"} 1"#,
                #"dibs_request_duration_seconds_count{route="/v1/drops/{drop}/claims"} 5"#,
            ] {
                XCTAssertTrue(metrics.contains(line), "no \(line) in\n\(metrics)")
            }
        }
    }

    func testASoldOutDropIsAnsweredFromMemory() async throws {
        let server = try TestServer()
        try await server.test(live: true) { api, _ in
            let byStore = try await Self.sellOut("gone", api)
            // The router learns in the background that every unit is sold: from then on a
            // "sold out" comes from memory. Its bytes are the store's.
            var fromMemory = false
            for attempt in 0..<50 where !fromMemory {
                let again = try await api.claim("gone", user: "cat", key: "again-\(attempt)")
                XCTAssertEqual(again.status, 409)
                XCTAssertEqual(again.text, byStore.text)
                fromMemory =
                    server.service.router.soldOutAnswer(
                        try DropID("gone"), key: try IdempotencyKey("never-used")) != nil
                if !fromMemory { try await Task.sleep(for: .milliseconds(20)) }
            }
            XCTAssertTrue(fromMemory, "the drop was never known sold out")
            let fast = try await api.claim("gone", user: "cat", key: "from-memory")
            XCTAssertEqual(fast.text, byStore.text)
            let replay = try await api.claim("gone", user: "ann", key: "held-key")
            XCTAssertEqual(replay.status, 201, "a key first answered held is replayed, not sold out")
        }
    }

    func testEverythingElseStillGoesToTheRouter() async throws {
        try await TestServer().test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)
            let before = try await api.claimsAnsweredOnEventLoop()
            let path = "/v1/drops/gone/claims"
            let noKey = try await api.call(.post, path, body: #"{"user":"dan"}"#)
            XCTAssertEqual(noKey.problem, "missing-idempotency-key")
            let badJSON = try await api.call(.post, path, idempotencyKey: "k1", body: #"{"user":"#)
            XCTAssertEqual(badJSON.status, 400)
            let unknownField = try await api.call(.post, path, idempotencyKey: "k2", body: #"{"user":"d","x":1}"#)
            XCTAssertEqual(unknownField.status, 400)
            let text = try await api.call(
                .post, path, idempotencyKey: "k3", body: #"{"user":"d"}"#, contentType: "text/plain")
            XCTAssertEqual(text.status, 415)
            let stranger = try await api.call(
                .post, path, key: .raw("Bearer dibs_0000_0000"), idempotencyKey: "k4", body: "{}")
            XCTAssertEqual(stranger.status, 401)
            let unknownDrop = try await api.claim("never-made", user: "eve")
            XCTAssertEqual(unknownDrop.status, 404)
            // A cancelled drop: the router is told, and answers its claims itself.
            try await api.createDrop("called-off", units: 5)
            _ = try await api.claim("called-off", user: "fay")
            let cancelled = try await api.call(
                .post, "/v1/admin/drops/called-off/cancel", key: .operator, idempotencyKey: "cancel", body: "{}")
            XCTAssertEqual(cancelled.status, 200, cancelled.text)
            for user in ["gus", "hal"] {
                let refused = try await api.claim("called-off", user: user)
                XCTAssertEqual(refused.problem, "drop-cancelled")
            }
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after, before)
        }
    }

    func testARateLimitInThisProcessIsAppliedOnTheEventLoop() async throws {
        let server = try TestServer(settings: { $0.perShopperLimit = RateLimit(perSecond: 0.001, burst: 2) })
        try await server.test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)  // bob's first token
            let before = try await api.claimsAnsweredOnEventLoop()
            let second = try await api.claim("gone", user: "bob", key: "bob-2")
            XCTAssertEqual(second.problem, "sold-out")
            let third = try await api.claim("gone", user: "bob", key: "bob-3")
            XCTAssertEqual(third.status, 429)
            XCTAssertNotNil(third.headers[.retryAfter])
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after - before, 2)
        }
    }

    func testABodyOverTheCapIsRefusedAsBefore() async throws {
        let server = try TestServer(settings: { $0.maximumBodyBytes = 64 })
        try await server.test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)
            let before = try await api.claimsAnsweredOnEventLoop()
            let big = try await api.call(
                .post, "/v1/drops/gone/claims", idempotencyKey: "big",
                body: #"{"user":"\#(String(repeating: "z", count: 100))"}"#)
            XCTAssertEqual(big.status, 413)
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after, before)
        }
    }

    /// A store failing: the event loop gives the router's 503, with Retry-After.
    func testAStoreFailureIsTheRoutersProblem() async throws {
        let failing = GatedStore()
        try await TestServer(store: failing).test(live: true) { api, _ in
            try await api.createDrop("flaky", units: 5)
            _ = try await api.claim("flaky", user: "ann")
            failing.failNext()
            // A query keeps a claim off the event loop (the router ignores it).
            let byRouter = try await api.call(
                .post, "/v1/drops/flaky/claims?via=router", idempotencyKey: "by-router", body: #"{"user":"ann"}"#)
            let before = try await api.claimsAnsweredOnEventLoop()
            failing.failNext()
            let onLoop = try await api.claim("flaky", user: "bob")
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertEqual(after - before, 1)
            XCTAssertEqual(onLoop.status, 503)
            XCTAssertEqual(onLoop.problem, "store-unavailable")
            XCTAssertEqual(onLoop.headers[.retryAfter], "1")
            XCTAssertEqual(onLoop.text, byRouter.text)
        }
    }

    static func claim(_ key: String, _ user: String, apiKey: String, drop: String = "gone") -> String {
        let body = #"{"user":"\#(user)"}"#
        return "POST /v1/drops/\(drop)/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(apiKey)\r\n"
            + "Idempotency-Key: \(key)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Requests in one write: claims answered on the event loop (one replayed by the store),
    /// others passed to the router, in every order. HTTP/1.1 answers in request order.
    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try TestServer()
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            _ = try await Self.sellOut("gone", api)
            let before = try await api.claimsAnsweredOnEventLoop()
            let requests =
                Self.claim("pipelined-1", "fay", apiKey: key) + Self.claim("held-key", "ann", apiKey: key)
                + Self.claim("pipelined-2", "gus", apiKey: key)
                + "GET /v1/drops/gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n\r\n"
                + Self.claim("pipelined-3", "hal", apiKey: key)
                + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answers = try await RawConnection.exchange(requests, port: try XCTUnwrap(port))
            let statuses = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            XCTAssertEqual(statuses, ["409", "201", "409", "200", "409", "200"], answers)
            let after = try await api.claimsAnsweredOnEventLoop()
            XCTAssertTrue((3...4).contains(after - before), "\(after - before) answered on the event loop")
        }
    }

    /// A live server whose store answers claims 300 ms late, with drop `slow` known to its
    /// router (so its claims are taken on the event loop): `body` gets a storefront key and
    /// the port.
    static func withSlowDrop(_ body: @Sendable (_ key: String, _ port: Int) async throws -> Void) async throws {
        let server = try TestServer(store: GatedStore(claimDelay: .milliseconds(300)))
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            try await api.createDrop("slow", units: 5)
            _ = try await api.claim("slow", user: "ann")  // the router learns the drop
            try await body(key, try XCTUnwrap(port))
        }
    }

    /// A store that answers slowly: the requests read meanwhile wait for its answer, so a
    /// quick answer from the router cannot overtake it.
    func testASlowStoreAnswerIsNotOvertaken() async throws {
        try await Self.withSlowDrop { key, port in
            let requests =
                Self.claim("slow-1", "bob", apiKey: key, drop: "slow") + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                + Self.claim("slow-2", "cat", apiKey: key, drop: "slow")
                + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answers = try await RawConnection.exchange(requests, port: port)
            let statuses = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            XCTAssertEqual(statuses, ["201", "200", "201", "200"], answers)
            let units = answers.components(separatedBy: #""unit":"#).dropFirst().map { $0.prefix(1) }
            XCTAssertEqual(units.count, 2, answers)
        }
    }

    /// HTTP/1.0 without `keep-alive`: the connection ends after the answer, on every path —
    /// a claim the event loop would answer from memory, one for the store, and the router's.
    /// With `keep-alive` it stays open for the next request.
    func testAnHTTP10RequestIsAnsweredThenTheConnectionCloses() async throws {
        let server = try TestServer()
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            let port = try XCTUnwrap(port)
            _ = try await Self.sellOut("gone", api)
            try await api.createDrop("open", units: 5)
            _ = try await api.claim("open", user: "ann")  // the router learns the drop
            let http10 = { (request: String) in request.replacingOccurrences(of: " HTTP/1.1\r\n", with: " HTTP/1.0\r\n")
            }
            for (request, status) in [
                (http10(Self.claim("old-1", "bob", apiKey: key)), "409"),
                (http10(Self.claim("old-2", "cat", apiKey: key, drop: "open")), "201"),
                ("GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n", "200"),
            ] {
                let answer = try await RawConnection.exchange(request, port: port)
                XCTAssertEqual(
                    answer.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }, [status])
            }
            let kept =
                "GET /healthz HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
                + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answers = try await RawConnection.exchange(kept, port: port)
            XCTAssertEqual(answers.components(separatedBy: "HTTP/1.1 200").count, 3, answers)
        }
    }
}
