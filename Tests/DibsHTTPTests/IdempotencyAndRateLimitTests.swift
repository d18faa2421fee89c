import DibsCore
import DibsHTTP
import HTTPTypes
import Hummingbird
import Synchronization
import XCTest

final class IdempotencyAndRateLimitTests: XCTestCase {
    func testSameKeyReplaysTheFirstAnswerWithItsToken() async throws {
        try await TestServer().test { api in
            try await api.createDrop("d", units: 1)
            let first = try await api.claim("d", user: "ann", key: "k1")
            let again = try await api.claim("d", user: "ann", key: "k1")
            XCTAssertEqual(again.status, first.status)
            XCTAssertEqual(again.text, first.text, "a replay is byte for byte the first answer")
            XCTAssertEqual(again.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            // No second claim was made: the unit is still the only one held.
            let drop = try await api.call(.get, "/v1/drops/d")
            XCTAssertEqual(drop.int("held"), 1)
            XCTAssertEqual(drop.int("waitlisted"), 0)

            // A winner's retry after the drop sold out still gets its 201.
            let token = try XCTUnwrap(first.string("hold_token"))
            try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "c1", body: #"{"hold_token":"\#(token)"}"#)
            _ = try await api.claim("d", user: "bob", key: "k2")
            let afterSoldOut = try await api.claim("d", user: "ann", key: "k1")
            XCTAssertEqual(afterSoldOut.status, 201)
            XCTAssertEqual(afterSoldOut.text, first.text)

            // Problems are replayed too.
            let soldOut = try await api.claim("d", user: "cat", key: "k3")
            do {
                let reply = try await api.claim("d", user: "cat", key: "k3")
                XCTAssertEqual(reply.text, soldOut.text)
            }
        }
    }

    /// The process that made a claim died before answering (or before keeping the answer):
    /// a store that keeps tokens still gives the retry the whole first answer.
    func testARetryAfterTheAnswerWasLostGetsTheToken() async throws {
        let store = GatedStore()
        try await TestServer(store: store).test { api in
            try await api.createDrop("d", units: 2)
            let direct = try await store.claim(
                ClaimRequest(drop: try DropID("d"), user: try UserID("ann"), idempotencyKey: try IdempotencyKey("lost"))
            )
            let token = try XCTUnwrap(direct.holdToken)
            let retry = try await api.claim("d", user: "ann", key: "lost")
            XCTAssertEqual(retry.status, 201, retry.text)
            XCTAssertEqual(retry.string("hold_token"), token.description)
            XCTAssertNil(retry.string("replayed"), "a whole replay is the first answer, not marked in the body")
            XCTAssertEqual(retry.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            let again = try await api.claim("d", user: "ann", key: "lost")
            XCTAssertEqual(again.text, retry.text)
            let confirmed = try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "c1", body: #"{"hold_token":"\#(token)"}"#)
            XCTAssertEqual(confirmed.status, 200, confirmed.text)
        }
    }

    /// A store that keeps only the token's hash (as Postgres): the service keeps the claim's
    /// answer for a retry, sealed, and a kept answer that does not open (sealed with another
    /// key) gives the store's replay, without the token.
    func testAClaimAnswerKeptByTheServiceIsSealed() async throws {
        let kept = KeptAnswers()
        let server = try TestServer(store: GatedStore(keepsHoldTokens: false), idempotency: kept)
        try await server.test { api in
            try await api.createDrop("d", units: 2)
            let first = try await api.claim("d", user: "ann", key: "k1")
            XCTAssertEqual(first.status, 201, first.text)
            let token = try XCTUnwrap(first.string("hold_token"))
            let key = "\(server.storefrontKeyID):claim:d:k1"
            let record = try XCTUnwrap(kept.completed[key], "the answer was not kept: \(kept.completed.keys)")
            let body = String(decoding: record.body, as: UTF8.self)
            XCTAssertFalse(body.contains(token), "the token is kept in the clear")
            XCTAssertFalse(body.contains("hold_token"), "the answer is kept in the clear")

            let again = try await api.claim("d", user: "ann", key: "k1")
            XCTAssertEqual(again.text, first.text, "the kept answer opens to the first answer")
            XCTAssertEqual(again.headers[HTTPField.Name("Idempotent-Replayed")!], "true")

            // Sealed with another key (a changed byte does the same): the outcome, no token.
            try kept.replaceBody(of: key, with: Array(body.replacingOccurrences(of: "0", with: "1").utf8))
            let elsewhere = try await api.claim("d", user: "ann", key: "k1")
            XCTAssertEqual(elsewhere.status, 201, elsewhere.text)
            XCTAssertEqual(elsewhere.string("claim"), first.string("claim"))
            XCTAssertEqual(elsewhere.int("unit"), first.int("unit"))
            XCTAssertTrue(elsewhere.json.keys.contains("hold_token"))
            XCTAssertNil(elsewhere.string("hold_token"))
            XCTAssertEqual(elsewhere.json["replayed"] as? Bool, true)
        }
    }

    func testSameKeyWithAnotherBodyIs422() async throws {
        try await TestServer().test { api in
            try await api.createDrop("d", units: 5)
            let first = try await api.claim("d", user: "ann", key: "shared")
            let other = try await api.claim("d", user: "bob", key: "shared")
            XCTAssertEqual(other.status, 422)
            XCTAssertEqual(other.problem, "idempotency-key-reused")
            // A claim key names one claim on one drop: on another drop it is another claim.
            try await api.createDrop("e", units: 5)
            do {
                let reply = try await api.claim("e", user: "ann", key: "shared")
                XCTAssertEqual(reply.status, 201)
            }

            let token = try XCTUnwrap(first.string("hold_token"))
            let confirmed = try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "pay-1", body: #"{"hold_token":"\#(token)"}"#)
            XCTAssertEqual(confirmed.status, 200)
            let otherPath = try await api.call(
                .post, "/v1/claims/d.1/release", idempotencyKey: "pay-1", body: #"{"hold_token":"\#(token)"}"#)
            XCTAssertEqual(otherPath.status, 422)
            XCTAssertEqual(otherPath.problem, "idempotency-key-reused")
            let otherBody = try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "pay-1",
                body: #"{"hold_token":"\#(token)","order_ref":"x"}"#)
            XCTAssertEqual(otherBody.status, 422)
        }
    }

    /// A claim's key names one claim on its drop whichever storefront key sends it: a retry
    /// after a key rotation gets the first answer, not a second claim.
    func testAClaimKeyIsTheDropsNotTheAPIKeys() async throws {
        let server = try TestServer()
        let rotated = APIKey.generate()
        try server.keys.insert(rotated.record(name: "shop-2", scope: .storefront, createdAt: server.clock.now()))
        try await server.test { api in
            try await api.createDrop("d", units: 5)
            let first = try await api.claim("d", user: "ann", key: "k1")
            let retry = try await api.call(
                .post, "/v1/drops/d/claims", key: .raw("Bearer \(rotated.text)"), idempotencyKey: "k1",
                body: #"{"user":"ann"}"#)
            XCTAssertEqual(retry.status, 201, retry.text)
            XCTAssertEqual(retry.string("claim"), first.string("claim"))
            XCTAssertEqual(retry.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
            let drop = try await api.call(.get, "/v1/drops/d")
            XCTAssertEqual(drop.int("held"), 1, "no second claim")
        }
    }

    func testSameKeyWhileInFlightIs409() async throws {
        let gate = GatedStore()
        try await TestServer(store: gate).test { api in
            try await api.createDrop("d", units: 5)
            let held = try await api.claim("d", user: "ann", key: "k")
            let body = #"{"hold_token":"\#(held.string("hold_token")!)"}"#
            gate.close()
            let first = Task { try await api.call(.post, "/v1/claims/d.1/confirm", idempotencyKey: "slow", body: body) }
            try await gate.waitForArrival()
            let second = try await api.call(.post, "/v1/claims/d.1/confirm", idempotencyKey: "slow", body: body)
            XCTAssertEqual(second.status, 409)
            XCTAssertEqual(second.problem, "idempotency-in-flight")
            gate.open()
            do {
                let reply = try await first.value
                XCTAssertEqual(reply.status, 200)
            }
            let after = try await api.call(.post, "/v1/claims/d.1/confirm", idempotencyKey: "slow", body: body)
            XCTAssertEqual(after.status, 200)
            XCTAssertEqual(after.headers[HTTPField.Name("Idempotent-Replayed")!], "true")
        }
    }

    func testASoldOutDropIsAnsweredFromMemoryOnceSettled() async throws {
        let store = GatedStore(soldAnswersSettle: .seconds(10))
        let server = try TestServer(store: store)
        try await server.test { api in
            try await api.createDrop("d", units: 1, extra: #","waitlist_capacity":0"#)
            let won = try await api.claim("d", user: "ann", key: "won")
            try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "pay",
                body: #"{"hold_token":"\#(won.string("hold_token")!)"}"#)
            // Every unit is sold: the store still answers until the settle time has passed.
            do {
                let reply = try await api.claim("d", user: "bob", key: "b1")
                XCTAssertEqual(reply.problem, "sold-out")
            }
            server.clock.advance(by: .seconds(11))
            do {
                let reply = try await api.claim("d", user: "cat", key: "c1")
                XCTAssertEqual(reply.problem, "sold-out")
            }
            let before = store.claims
            // From now on: no store call for a new key...
            let fast = try await api.claim("d", user: "dan", key: "d1")
            XCTAssertEqual(fast.problem, "sold-out")
            XCTAssertEqual(store.claims, before, "a sold-out drop's claim went to the store")
            // ...and the same bytes as the store's sold-out answer, so replays match.
            do {
                let other = try await api.claim("d", user: "bob", key: "b1")
                XCTAssertEqual(fast.text, other.text)
            }
            // A key the store answered otherwise still goes there and replays its answer.
            let replay = try await api.claim("d", user: "ann", key: "won")
            XCTAssertEqual(replay.status, 201)
            XCTAssertEqual(replay.text, won.text)
            XCTAssertEqual(store.claims, before + 1)
        }
    }

    /// A store whose claim sees the sale atomically (Redis, memory): the first "sold out"
    /// after the sale teaches the service, and the next new key is answered from memory.
    func testASoldOutDropIsAnsweredFromMemoryAtOnceOnAnAtomicStore() async throws {
        let store = GatedStore()
        try await TestServer(store: store).test { api in
            try await api.createDrop("d", units: 1, extra: #","waitlist_capacity":0"#)
            let won = try await api.claim("d", user: "ann", key: "won")
            let again = try await api.claim("d", user: "ann", key: "again")
            XCTAssertEqual(again.problem, "limit-reached")
            try await api.call(
                .post, "/v1/claims/d.1/confirm", idempotencyKey: "pay",
                body: #"{"hold_token":"\#(won.string("hold_token")!)"}"#)
            let first = try await api.claim("d", user: "bob", key: "b1")
            XCTAssertEqual(first.problem, "sold-out")
            let before = store.claims
            let fast = try await api.claim("d", user: "cat", key: "c1")
            XCTAssertEqual(fast.problem, "sold-out")
            XCTAssertEqual(fast.text, first.text)
            XCTAssertEqual(store.claims, before, "a sold drop's claim went to the store after the store said so")
            // Ann, at her limit, hears "sold out" for a new key and her old answers again.
            let third = try await api.claim("d", user: "ann", key: "third")
            XCTAssertEqual(third.problem, "sold-out")
            let replayedLimit = try await api.claim("d", user: "ann", key: "again")
            XCTAssertEqual(replayedLimit.problem, "limit-reached")
            let replayedWin = try await api.claim("d", user: "ann", key: "won")
            XCTAssertEqual(replayedWin.status, 201)
            XCTAssertEqual(store.claims, before + 2, "the two answered keys go to the store, the new one does not")
        }
    }

    func testStoreFailureIsNotKeptSoARetryRunsAgain() async throws {
        let gate = GatedStore()
        try await TestServer(store: gate).test { api in
            try await api.createDrop("d", units: 5)
            gate.failNext()
            let failed = try await api.claim("d", user: "ann", key: "retry")
            XCTAssertEqual(failed.status, 503)
            XCTAssertEqual(failed.problem, "store-unavailable")
            XCTAssertEqual(failed.headers[.retryAfter], "1")
            do {
                let reply = try await api.claim("d", user: "ann", key: "retry")
                XCTAssertEqual(reply.status, 201)
            }
        }
    }

    func testPerShopperLimit() async throws {
        let server = try TestServer(settings: { $0.perShopperLimit = RateLimit(perSecond: 1, burst: 2) })
        try await server.test { api in
            try await api.createDrop("a", units: 5)
            try await api.createDrop("b", units: 5)
            try await api.createDrop("c", units: 5)
            do {
                let reply = try await api.claim("a", user: "ann")
                XCTAssertEqual(reply.status, 201)
            }
            do {
                let reply = try await api.claim("b", user: "ann")
                XCTAssertEqual(reply.status, 201)
            }
            let limited = try await api.claim("c", user: "ann")
            XCTAssertEqual(limited.status, 429)
            XCTAssertEqual(limited.problem, "rate-limited")
            XCTAssertEqual(limited.headers[.retryAfter], "1")
            do {
                let reply = try await api.claim("c", user: "bob")
                XCTAssertEqual(reply.status, 201, "another shopper is not limited")
            }
            server.clock.advance(by: .seconds(1))
            do {
                let reply = try await api.claim("c", user: "ann")
                XCTAssertEqual(reply.status, 201)
            }
        }
    }

    func testPerKeyAndPerAddressLimits() async throws {
        let server = try TestServer(settings: { $0.perKeyLimit = RateLimit(perSecond: 0.5, burst: 3) })
        try await server.test { api in
            try await api.createDrop("a", units: 5)
            for _ in 0..<2 {
                do {
                    let reply = try await api.call(.get, "/v1/drops/a", key: .operator)
                    XCTAssertEqual(reply.status, 200)
                }
            }
            let limited = try await api.call(.get, "/v1/drops/a", key: .operator)
            XCTAssertEqual(limited.status, 429)
            XCTAssertEqual(limited.headers[.retryAfter], "2")
            do {
                let reply = try await api.call(.get, "/v1/drops/a", key: .storefront)
                XCTAssertEqual(reply.status, 200)
            }
        }
        let byAddress = try TestServer(settings: { $0.perIPLimit = RateLimit(perSecond: 1, burst: 2) })
        try await byAddress.test { api in
            // Failed authentication costs the address a token too.
            do {
                let reply = try await api.call(.get, "/v1/drops/a", key: .raw("Bearer x"))
                XCTAssertEqual(reply.status, 401)
            }
            do {
                let reply = try await api.call(.get, "/v1/drops/a", key: .raw("Bearer x"))
                XCTAssertEqual(reply.status, 401)
            }
            let limited = try await api.call(.get, "/v1/drops/a", key: .raw("Bearer x"))
            XCTAssertEqual(limited.status, 429)
            XCTAssertEqual(limited.problem, "rate-limited")
            // A valid key's requests from that address are limited by the key, not the address:
            // a storefront's backend sends every shopper's claims from a few addresses.
            try await api.createDrop("a", units: 10)
            for shopper in 0..<6 {
                let reply = try await api.claim("a", user: "shopper-\(shopper)")
                XCTAssertEqual(reply.status, 201, reply.text)
            }
        }
    }
}

/// A memory store whose confirms can be held at a gate, and whose claims can be made to
/// fail once: to catch the HTTP layer with a request in flight, or with a store that is down.
/// Its sold-answers settle is chosen: zero like Redis, or a time like Postgres; so is a delay
/// before every claim's answer (a slow store), and whether it keeps tokens (or, like
/// Postgres, replays a claim without its token).
final class GatedStore: LeaseStore, Sendable {
    private let inner = MemoryLeaseStore()
    let soldAnswersSettle: Duration
    let claimDelay: Duration
    let keepsHoldTokens: Bool
    let countingIsCostly: Bool
    init(
        soldAnswersSettle: Duration = .zero, claimDelay: Duration = .zero, keepsHoldTokens: Bool = true,
        countingIsCostly: Bool = false
    ) {
        self.soldAnswersSettle = soldAnswersSettle
        self.claimDelay = claimDelay
        self.keepsHoldTokens = keepsHoldTokens
        self.countingIsCostly = countingIsCostly
    }
    private let countsCalls = Mutex(0)
    /// How many times `counts` was called.
    var countsRead: Int { countsCalls.withLock { $0 } }
    private let state = Mutex<(closed: Bool, failNext: Bool, arrived: Bool)>((false, false, false))
    private let claimCalls = Mutex(0)
    var claims: Int { claimCalls.withLock { $0 } }
    var backendName: String { "memory" }

    func close() { state.withLock { $0.closed = true } }
    func open() { state.withLock { $0.closed = false } }
    func failNext() { state.withLock { $0.failNext = true } }

    func waitForArrival() async throws {
        for _ in 0..<500 where !state.withLock({ $0.arrived }) { try await Task.sleep(for: .milliseconds(10)) }
        XCTAssertTrue(state.withLock { $0.arrived }, "the first claim never reached the store")
    }

    func claim(_ request: ClaimRequest) async throws -> ClaimOutcome {
        if claimDelay > .zero { try await Task.sleep(for: claimDelay) }
        let fail = state.withLock { state in
            defer { state.failNext = false }
            return state.failNext
        }
        if fail { throw DibsError(.storeUnavailable, "the test says the store is down") }
        claimCalls.withLock { $0 += 1 }
        let outcome = try await inner.claim(request)
        guard outcome.replayed && !keepsHoldTokens else { return outcome }
        return ClaimOutcome(claim: outcome.claim, decision: outcome.decision, holdToken: nil, replayed: true)
    }

    func createDrop(_ config: DropConfig) async throws { try await inner.createDrop(config) }
    func confirm(_ request: ConfirmRequest) async throws -> Sale {
        state.withLock { $0.arrived = true }
        while state.withLock({ $0.closed }) { try await Task.sleep(for: .milliseconds(5)) }
        return try await inner.confirm(request)
    }
    func release(claim: ClaimID, holdToken: HoldToken) async throws -> ClaimStatus {
        try await inner.release(claim: claim, holdToken: holdToken)
    }
    func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) async throws -> Lease {
        try await inner.extend(claim: claim, holdToken: holdToken, fence: fence)
    }
    func reapExpired(drop: DropID) async throws -> ReapReport { try await inner.reapExpired(drop: drop) }
    func status(of claim: ClaimID) async throws -> ClaimStatus { try await inner.status(of: claim) }
    func inspect(drop: DropID) async throws -> DropSnapshot { try await inner.inspect(drop: drop) }
    func counts(drop: DropID) async throws -> DropSnapshot {
        countsCalls.withLock { $0 += 1 }
        return try await inner.counts(drop: drop)
    }
    func configuration(of drop: DropID) async throws -> DropConfig { try await inner.configuration(of: drop) }
    func answeredKeys(drop: DropID) async throws -> Set<IdempotencyKey> { try await inner.answeredKeys(drop: drop) }
    func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig {
        try await inner.reschedule(drop: drop, opensAt: opensAt, closesAt: closesAt)
    }
}

/// The memory idempotency store, with the records completed open to the test.
final class KeptAnswers: IdempotencyStore, Sendable {
    private let inner = MemoryIdempotencyStore()
    private let records = Mutex<[String: IdempotencyRecord]>([:])
    var completed: [String: IdempotencyRecord] { records.withLock { $0 } }

    func replaceBody(of key: String, with body: [UInt8]) throws {
        let record = try XCTUnwrap(completed[key])
        complete(
            key: key, record: IdempotencyRecord(fingerprint: record.fingerprint, status: record.status, body: body),
            keepFor: .seconds(3600))
    }

    func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) -> IdempotencyStart {
        inner.begin(key: key, fingerprint: fingerprint, pendingFor: pendingFor)
    }
    func peek(key: String, fingerprint: [UInt8]) -> IdempotencyStart? { inner.peek(key: key, fingerprint: fingerprint) }
    func complete(key: String, record: IdempotencyRecord, keepFor: Duration) {
        records.withLock { $0[key] = record }
        inner.complete(key: key, record: record, keepFor: keepFor)
    }
    func abandon(key: String) { inner.abandon(key: key) }
}
