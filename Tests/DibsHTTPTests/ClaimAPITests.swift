import DibsCore
import DibsHTTP
import HTTPTypes
import Hummingbird
import XCTest

/// Every endpoint through Hummingbird's test client, on the memory store.
final class ClaimAPITests: XCTestCase {
    func testClaimHoldsThenWaitlistsThenSellsOut() async throws {
        try await TestServer().test { api in
            let created = try await api.createDrop("shoes", units: 2, extra: #","waitlist_capacity":1"#)
            XCTAssertEqual(created.status, 201)
            XCTAssertEqual(created.string("state"), "open")
            XCTAssertEqual(created.int("free"), 2)

            let first = try await api.claim("shoes", user: "ann")
            XCTAssertEqual(first.status, 201)
            XCTAssertEqual(first.string("state"), "held")
            XCTAssertEqual(first.string("claim"), "shoes.1")
            XCTAssertEqual(first.int("unit"), 0)
            XCTAssertEqual(first.int("fence"), 1)
            XCTAssertEqual(first.string("hold_token")?.count, 32)
            XCTAssertNotNil(first.string("expires_at").flatMap(RFC3339.parse))

            let second = try await api.claim("shoes", user: "bob")
            XCTAssertEqual(second.status, 201)
            XCTAssertEqual(second.int("unit"), 1)

            let third = try await api.claim("shoes", user: "cat")
            XCTAssertEqual(third.status, 202)
            XCTAssertEqual(third.string("state"), "waitlisted")
            XCTAssertEqual(third.int("position"), 1)
            XCTAssertEqual(third.string("hold_token")?.count, 32)

            let fourth = try await api.claim("shoes", user: "dan")
            XCTAssertEqual(fourth.status, 409)
            XCTAssertEqual(fourth.problem, "sold-out")

            let drop = try await api.call(.get, "/v1/drops/shoes")
            XCTAssertEqual(drop.status, 200)
            XCTAssertEqual(drop.int("held"), 2)
            XCTAssertEqual(drop.int("waitlisted"), 1)
            XCTAssertEqual(drop.int("free"), 0)
        }
    }

    func testStatusConfirmAndRelease() async throws {
        try await TestServer().test { api in
            try await api.createDrop("bags", units: 1, extra: #","per_user_limit":2"#)
            let held = try await api.claim("bags", user: "ann")
            let waiting = try await api.claim("bags", user: "bob")
            let token = try XCTUnwrap(held.string("hold_token"))
            let waitingToken = try XCTUnwrap(waiting.string("hold_token"))

            let status = try await api.call(.get, "/v1/claims/bags.1")
            XCTAssertEqual(status.status, 200)
            XCTAssertEqual(status.string("state"), "held")
            XCTAssertEqual(status.string("user"), "ann")
            XCTAssertNil(status.json["hold_token"], "status must never show the token")

            // Releasing the held unit promotes the waitlisted claim onto it.
            let released = try await api.call(
                .post, "/v1/claims/bags.1/release", idempotencyKey: "rel-1", body: #"{"hold_token":"\#(token)"}"#)
            XCTAssertEqual(released.status, 200)
            XCTAssertEqual(released.string("state"), "released")
            let promoted = try await api.call(.get, "/v1/claims/bags.2")
            XCTAssertEqual(promoted.string("state"), "held")
            XCTAssertEqual(promoted.int("unit"), 0)

            let wrong = try await api.call(
                .post, "/v1/claims/bags.2/confirm", idempotencyKey: "conf-bad",
                body: #"{"hold_token":"\#(token)","order_ref":"o-1"}"#)
            XCTAssertEqual(wrong.status, 403)
            XCTAssertEqual(wrong.problem, "invalid-hold-token")

            let stale = try await api.call(
                .post, "/v1/claims/bags.2/confirm", idempotencyKey: "conf-stale",
                body: #"{"hold_token":"\#(waitingToken)","fence":1.0}"#)
            XCTAssertEqual(stale.status, 409)
            XCTAssertEqual(stale.problem, "stale-fence")

            // A fence past 2^53 is not read exactly: refused, naming the bound that holds.
            let huge = try await api.call(
                .post, "/v1/claims/bags.2/confirm", idempotencyKey: "conf-huge",
                body: #"{"hold_token":"\#(waitingToken)","fence":1e17}"#)
            XCTAssertEqual(huge.problem, "invalid-field")
            XCTAssertEqual(
                huge.string("detail"), #""fence" must be between 1 and 9007199254740992, got 100000000000000000"#)

            let confirmed = try await api.call(
                .post, "/v1/claims/bags.2/confirm", idempotencyKey: "conf-1",
                body: #"{"hold_token":"\#(waitingToken)","order_ref":"order-7"}"#)
            XCTAssertEqual(confirmed.status, 200)
            XCTAssertEqual(confirmed.string("state"), "confirmed")
            XCTAssertEqual(confirmed.string("order_ref"), "order-7")
            XCTAssertEqual(confirmed.int("unit"), 0)

            let drop = try await api.call(.get, "/v1/drops/bags")
            XCTAssertEqual(drop.int("sold"), 1)
            XCTAssertEqual(drop.string("state"), "sold-out")

            // Sold out for good: answered from memory, and still sold out.
            let late = try await api.claim("bags", user: "cat")
            XCTAssertEqual(late.problem, "sold-out")
            let later = try await api.claim("bags", user: "dan")
            XCTAssertEqual(later.problem, "sold-out")
            let missing = try await api.call(.get, "/v1/claims/bags.99")
            XCTAssertEqual(missing.status, 404)
            XCTAssertEqual(missing.problem, "unknown-claim")
        }
    }

    func testExpiredLeaseCannotBeConfirmed() async throws {
        let server = try TestServer()
        try await server.test { api in
            try await api.createDrop("hats", units: 1, extra: #","hold_ttl_seconds":5"#)
            let held = try await api.claim("hats", user: "ann")
            server.clock.advance(by: .seconds(6))
            let late = try await api.call(
                .post, "/v1/claims/hats.1/confirm", idempotencyKey: "c",
                body: #"{"hold_token":"\#(held.string("hold_token")!)"}"#)
            XCTAssertEqual(late.status, 409)
            XCTAssertTrue(["lease-expired", "not-held"].contains(late.problem ?? ""), "got \(late.text)")
            let again = try await api.claim("hats", user: "bob")
            XCTAssertEqual(again.status, 201, "an expired lease's unit is claimable again")
        }
    }

    func testLimitReached() async throws {
        try await TestServer().test { api in
            try await api.createDrop("caps", units: 5)
            do {
                let reply = try await api.claim("caps", user: "ann", key: "a1")
                XCTAssertEqual(reply.status, 201)
            }
            let second = try await api.claim("caps", user: "ann", key: "a2")
            XCTAssertEqual(second.status, 403)
            XCTAssertEqual(second.problem, "limit-reached")
        }
    }

    func testOpenCloseAndCancel() async throws {
        let server = try TestServer()
        try await server.test { api in
            let opens = RFC3339.format(server.clock.now().adding(.seconds(3600)))
            let created = try await api.createDrop("socks", units: 3, extra: #","opens_at":"\#(opens)""#)
            XCTAssertEqual(created.string("state"), "scheduled")
            let early = try await api.claim("socks", user: "ann", key: "early")
            XCTAssertEqual(early.status, 409)
            XCTAssertEqual(early.problem, "drop-not-open")

            let opened = try await api.call(.post, "/v1/admin/drops/socks/open", key: .operator, idempotencyKey: "o")
            XCTAssertEqual(opened.status, 200)
            XCTAssertEqual(opened.string("state"), "open")
            do {
                let reply = try await api.claim("socks", user: "ann")
                XCTAssertEqual(reply.status, 201)
            }

            server.clock.advance(by: .milliseconds(10))
            let closed = try await api.call(.post, "/v1/admin/drops/socks/close", key: .operator, idempotencyKey: "c")
            XCTAssertEqual(closed.string("state"), "closed")
            server.clock.advance(by: .milliseconds(10))
            do {
                let reply = try await api.claim("socks", user: "bob")
                XCTAssertEqual(reply.problem, "drop-closed")
            }

            let cancelled = try await api.call(
                .post, "/v1/admin/drops/socks/cancel", key: .operator, idempotencyKey: "x")
            XCTAssertEqual(cancelled.string("state"), "cancelled")
            do {
                let reply = try await api.claim("socks", user: "cat")
                XCTAssertEqual(reply.problem, "drop-cancelled")
            }
            let confirm = try await api.call(
                .post, "/v1/claims/socks.1/confirm", idempotencyKey: "cc",
                body: #"{"hold_token":"00000000000000000000000000000000"}"#)
            XCTAssertEqual(confirm.problem, "drop-cancelled")

            let unknown = try await api.call(.post, "/v1/admin/drops/nope/open", key: .operator, idempotencyKey: "u")
            XCTAssertEqual(unknown.status, 404)
            XCTAssertEqual(unknown.problem, "unknown-drop")
        }
    }

    func testCreateDropRefusals() async throws {
        try await TestServer().test { api in
            do {
                let reply = try await api.createDrop("dup", units: 1)
                XCTAssertEqual(reply.status, 201)
            }
            let again = try await api.call(
                .post, "/v1/admin/drops", key: .operator, idempotencyKey: "dup-2", body: #"{"id":"dup","units":1}"#)
            XCTAssertEqual(again.status, 409)
            XCTAssertEqual(again.problem, "drop-exists")
            for (body, problem) in [
                (#"{"id":"x","units":0}"#, "invalid-field"),
                (#"{"id":"x","units":1000001}"#, "invalid-field"),
                (#"{"id":"Bad Id","units":1}"#, "invalid-input"),
                (#"{"units":1}"#, "invalid-field"),
                (#"{"id":"x","units":1,"backend":"mysql"}"#, "invalid-input"),
                (#"{"id":"x","units":1,"mode":"auction"}"#, "invalid-input"),
                (#"{"id":"x","units":1,"opens_at":"tomorrow"}"#, "invalid-field"),
                (
                    #"{"id":"x","units":1,"opens_at":"2026-01-01T00:00:00Z","closes_at":"2025-01-01T00:00:00Z"}"#,
                    "invalid-input"
                ),
                (#"{"id":"x","units":1,"hold_ttl_seconds":0}"#, "invalid-field"),
            ] {
                let reply = try await api.call(
                    .post, "/v1/admin/drops", key: .operator, idempotencyKey: "k-\(body.hashValue)", body: body)
                XCTAssertEqual(reply.status, 400, body)
                XCTAssertEqual(reply.problem, problem, body)
            }
            // The detail says what is wrong with a number: a fraction, or a whole number out of
            // range, however large (past 2^53 it was called "not a number").
            for (body, detail) in [
                (#"{"id":"x","units":2.5}"#, #""units" must be a whole number, not 2.5"#),
                (#"{"id":"x","units":1e23}"#, #""units" must be between 1 and 1000000, got 1e+23"#),
                (#"{"id":"x","units":99999999999999999999}"#, #""units" must be between 1 and 1000000, got 1e+20"#),
                (#"{"id":"x","units":0}"#, #""units" must be between 1 and 1000000, got 0"#),
                (#"{"id":"x","units":-3.0}"#, #""units" must be between 1 and 1000000, got -3"#),
                (#"{"id":"x","units":"5"}"#, #""units" must be a whole number, not a string"#),
            ] {
                let reply = try await api.call(
                    .post, "/v1/admin/drops", key: .operator, idempotencyKey: "n-\(body.hashValue)", body: body)
                XCTAssertEqual(reply.problem, "invalid-field", body)
                XCTAssertEqual(reply.string("detail"), detail, body)
            }
        }
    }

    func testDrawEntries() async throws {
        try await TestServer().test { api in
            try await api.createDrop("raffle", units: 1, extra: #","mode":"draw""#)
            let entry = try await api.claim("raffle", user: "ann")
            XCTAssertEqual(entry.status, 202)
            XCTAssertEqual(entry.string("state"), "entered")
            XCTAssertEqual(entry.int("position"), 1)
        }
    }

    func testHealthReadinessMetricsAndDocument() async throws {
        let server = try TestServer()
        try await server.test { api in
            let health = try await api.call(.get, "/healthz", key: .none)
            XCTAssertEqual(health.status, 200)
            let ready = try await api.call(.get, "/readyz", key: .none)
            XCTAssertEqual(ready.status, 200)
            try await api.createDrop("m", units: 1)
            try await api.claim("m", user: "ann")
            try await api.claim("m", user: "bob")
            try await api.claim("m", user: "cat")
            await server.service.sampleDropGauges()
            let metrics = try await api.call(.get, "/metrics", key: .none)
            XCTAssertEqual(metrics.status, 200)
            XCTAssertTrue(metrics.text.contains(#"dibs_claims_total{outcome="held"} 1"#), metrics.text)
            XCTAssertTrue(metrics.text.contains(#"dibs_claims_total{outcome="waitlisted"} 1"#), metrics.text)
            XCTAssertTrue(metrics.text.contains(#"dibs_claims_total{outcome="sold-out"} 1"#), metrics.text)
            XCTAssertTrue(
                metrics.text.contains(#"dibs_request_duration_seconds_count{route="/v1/drops/{drop}/claims"} 3"#),
                metrics.text)
            // Answers by status: the drop made and the held claim, the waitlisted one, the
            // sold-out one, /healthz and /readyz (this answer is counted once written).
            for (status, count) in [(201, 2), (202, 1), (409, 1), (200, 2)] {
                XCTAssertTrue(
                    metrics.text.contains("dibs_http_responses_total{status=\"\(status)\"} \(count)\n"), metrics.text)
            }
            XCTAssertTrue(metrics.text.contains(#"dibs_leases_held{drop="m"} 1"#), metrics.text)
            XCTAssertTrue(metrics.text.contains(#"dibs_waitlist_length{drop="m"} 1"#), metrics.text)
            let document = try await api.call(.get, "/v1/openapi.yaml", key: .none)
            XCTAssertEqual(document.status, 200)
            XCTAssertTrue(document.text.hasPrefix("openapi: 3.1"), String(document.text.prefix(40)))
        }
    }
}

/// `GET /v1/drops/{drop}` on a store whose counting is costly (Postgres counts every free and
/// held unit) reuses its counts for `costlyCountsFreshFor`; on any other store, and in the
/// operator's answers, they are read each time.
final class CostlyCountsTests: XCTestCase {
    func testPollingADropOnACostlyStoreCountsOnceInAWhile() async throws {
        let store = GatedStore(countingIsCostly: true)
        let server = try TestServer(store: store)
        try await server.test { api in
            try await api.createDrop("poll", units: 3)
            let before = store.countsRead
            for _ in 0..<20 {
                let drop = try await api.call(.get, "/v1/drops/poll")
                XCTAssertEqual(drop.int("held"), 0)
            }
            XCTAssertEqual(store.countsRead, before + 1, "twenty polls within a second count once")
            // A claim shows once the counts are stale; the poll that finds them stale reads them.
            let claimed = try await api.claim("poll", user: "ann")
            XCTAssertEqual(claimed.status, 201)
            let stale = try await api.call(.get, "/v1/drops/poll")
            XCTAssertEqual(stale.int("held"), 0)
            server.clock.advance(by: .milliseconds(1001))
            let fresh = try await api.call(.get, "/v1/drops/poll")
            XCTAssertEqual(fresh.int("held"), 1)
            XCTAssertEqual(store.countsRead, before + 2)
            // The operator's change answers with fresh counts.
            let closed = try await api.call(.post, "/v1/admin/drops/poll/close", key: .operator, idempotencyKey: "c")
            XCTAssertEqual(closed.int("held"), 1)
            XCTAssertEqual(store.countsRead, before + 3)
        }
    }

    func testAStoreWhoseCountingIsCheapIsCountedEveryTime() async throws {
        let store = GatedStore()
        let server = try TestServer(store: store)
        try await server.test { api in
            try await api.createDrop("cheap", units: 3)
            let before = store.countsRead
            let first = try await api.call(.get, "/v1/drops/cheap")
            XCTAssertEqual(first.int("held"), 0)
            let claimedCheap = try await api.claim("cheap", user: "ann")
            XCTAssertEqual(claimedCheap.status, 201)
            let after = try await api.call(.get, "/v1/drops/cheap")
            XCTAssertEqual(after.int("held"), 1)
            XCTAssertEqual(store.countsRead, before + 2)
        }
    }
}
