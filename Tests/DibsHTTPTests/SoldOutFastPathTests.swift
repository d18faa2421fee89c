import DibsCore
import DibsHTTP
import HTTPTypes
import Hummingbird
import NIOCore
import NIOPosix
import XCTest

/// Claims on a sold-out drop answered by the server's channel handler, on the event loop,
/// over a real socket: the same answer as the router's, and nothing else answered there.
final class SoldOutFastPathTests: XCTestCase {
    /// Sells the one unit of `drop` and has the router answer one claim "sold out", after
    /// which the drop is known sold out for good.
    private static func sellOut(_ drop: String, _ api: API) async throws -> Reply {
        try await api.createDrop(drop, units: 1, extra: #","waitlist_capacity":0"#)
        let held = try await api.claim(drop, user: "ann", key: "held-key")
        let token = try XCTUnwrap(held.string("hold_token"))
        let confirmed = try await api.call(
            .post, "/v1/claims/\(drop).1/confirm", idempotencyKey: "confirm", body: #"{"hold_token":"\#(token)"}"#)
        XCTAssertEqual(confirmed.status, 200)
        let byRouter = try await api.claim(drop, user: "bob", key: "first-sold-out")
        XCTAssertEqual(byRouter.problem, "sold-out")
        return byRouter
    }

    private static func answeredOnEventLoop(_ api: API) async throws -> Int {
        let metrics = try await api.call(.get, "/metrics", key: .none).text
        let line = try XCTUnwrap(
            metrics.split(separator: "\n").first { $0.hasPrefix("dibs_claims_answered_on_event_loop_total ") })
        return try XCTUnwrap(Int(line.split(separator: " ").last ?? ""))
    }

    func testASoldOutClaimGetsTheRoutersAnswerFromTheEventLoop() async throws {
        try await TestServer().test(live: true) { api, _ in
            let byRouter = try await Self.sellOut("gone", api)
            let answeredBefore = try await Self.answeredOnEventLoop(api)
            XCTAssertEqual(answeredBefore, 0)

            let fast = try await api.claim("gone", user: "cat", key: "second-sold-out")
            let answeredAfter = try await Self.answeredOnEventLoop(api)
            XCTAssertEqual(answeredAfter, 1, "the second sold-out claim never reached the router")
            XCTAssertEqual(fast.status, 409)
            XCTAssertEqual(fast.text, byRouter.text)
            for name in [HTTPField.Name.contentType, .contentLength, .server] {
                XCTAssertEqual(fast.headers[name], byRouter.headers[name], "\(name)")
            }
            let date = try XCTUnwrap(fast.headers[.date])
            XCTAssertTrue(date.hasSuffix(" GMT") && date.count == 29, date)

            let metrics = try await api.call(.get, "/metrics", key: .none).text
            XCTAssertTrue(metrics.contains(#"dibs_claims_total{outcome="sold-out"} 2"#), metrics)
            XCTAssertTrue(
                metrics.contains(#"dibs_request_duration_seconds_count{route="/v1/drops/{drop}/claims"} 3"#), metrics)
        }
    }

    func testEverythingButSoldOutStillGoesToTheRouter() async throws {
        try await TestServer().test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)
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
            let replay = try await api.claim("gone", user: "ann", key: "held-key")
            XCTAssertEqual(replay.status, 201, "a key first answered held is replayed, not sold out")
            XCTAssertEqual(replay.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            let unknownDrop = try await api.claim("never-made", user: "eve")
            XCTAssertEqual(unknownDrop.status, 404)
            let answered = try await Self.answeredOnEventLoop(api)
            XCTAssertEqual(answered, 0)
        }
    }

    func testARateLimitInThisProcessIsAppliedOnTheEventLoop() async throws {
        let server = try TestServer(settings: { $0.perShopperLimit = RateLimit(perSecond: 0.001, burst: 2) })
        try await server.test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)  // bob's first token
            let second = try await api.claim("gone", user: "bob", key: "bob-2")
            XCTAssertEqual(second.problem, "sold-out")
            let third = try await api.claim("gone", user: "bob", key: "bob-3")
            XCTAssertEqual(third.status, 429)
            XCTAssertNotNil(third.headers[.retryAfter])
            let answered = try await Self.answeredOnEventLoop(api)
            XCTAssertEqual(answered, 2)
        }
    }

    func testABodyOverTheCapIsRefusedAsBefore() async throws {
        let server = try TestServer(settings: { $0.maximumBodyBytes = 64 })
        try await server.test(live: true) { api, _ in
            _ = try await Self.sellOut("gone", api)
            let big = try await api.call(
                .post, "/v1/drops/gone/claims", idempotencyKey: "big",
                body: #"{"user":"\#(String(repeating: "z", count: 100))"}"#)
            XCTAssertEqual(big.status, 413)
            let answered = try await Self.answeredOnEventLoop(api)
            XCTAssertEqual(answered, 0)
        }
    }

    /// Five requests in one write. The first, sold out, is answered on the event loop; the
    /// replay after it goes through the router; the sold-out claim after that must wait for
    /// it, as HTTP/1.1 answers in request order (it is passed on too unless the replay was
    /// answered before it was read).
    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let server = try TestServer()
        let key = server.storefrontKey
        try await server.test(live: true) { api, port in
            _ = try await Self.sellOut("gone", api)
            func claim(_ idempotencyKey: String, _ user: String) -> String {
                let body = #"{"user":"\#(user)"}"#
                return "POST /v1/drops/gone/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n"
                    + "Idempotency-Key: \(idempotencyKey)\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let requests =
                claim("pipelined-1", "fay") + claim("held-key", "ann") + claim("pipelined-2", "gus")
                + "GET /v1/drops/gone HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n\r\n"
                + "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let answers = try await Self.exchange(requests, port: try XCTUnwrap(port))
            let statuses = answers.components(separatedBy: "HTTP/1.1 ").dropFirst().map { $0.prefix(3) }
            XCTAssertEqual(statuses, ["409", "201", "409", "200", "200"], answers)
            let answered = try await Self.answeredOnEventLoop(api)
            XCTAssertTrue((1...2).contains(answered), "\(answered) answered on the event loop")
        }
    }

    /// Writes `requests` at once on a new connection and reads until the server closes it.
    private static func exchange(_ requests: String, port: Int) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: requests))
            var text = ""
            for try await chunk in inbound { text += String(buffer: chunk) }
            return text
        }
    }
}
