import Crypto
public import DibsCore
public import Logging

/// A request as the service sees it, whatever the HTTP library: the parts Dibs reads.
struct APIRequest: Sendable {
    enum Method: String, Sendable { case get = "GET", post = "POST" }
    let method: Method
    let path: String
    let authorization: String?
    let idempotencyKey: String?
    let contentType: String?
    let clientIP: String
    let body: [UInt8]
}

/// The claim API, apart from HTTP: authentication, rate limits, idempotency and the
/// operations on drops and claims. Every answer, success or problem, is an `APIResponse`.
public final class DibsService: Sendable {
    let router: DropRouter
    let metrics: DibsMetrics
    private let authenticator: Authenticator
    private let idempotency: any IdempotencyStore
    private let limiter: any RateLimiter
    let settings: ServiceSettings
    let clock: any DibsClock
    let logger: Logger
    /// The counts `GET /v1/drops/{drop}` reuses for stores whose counting is costly.
    let costlyCounts: RefreshingCache<DropID, DropSnapshot>

    /// Wires the service to its stores.
    ///
    /// - Parameters:
    ///   - stores: one lease store per backend a drop may be on.
    ///   - directory: where each drop lives (`dibs_drops`, or memory).
    public init(
        stores: [any LeaseStore], directory: any DropDirectory, keys: any APIKeyStore,
        idempotency: any IdempotencyStore, limiter: any RateLimiter, settings: ServiceSettings,
        metrics: DibsMetrics, clock: any DibsClock = SystemClock(), logger: Logger
    ) {
        self.router = DropRouter(
            stores: stores, directory: directory, clock: clock, cacheFor: settings.dropCacheFor)
        self.authenticator = Authenticator(keys: keys, clock: clock, cacheFor: settings.apiKeyCacheFor)
        self.idempotency = idempotency
        self.limiter = limiter
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        self.costlyCounts = RefreshingCache(clock: clock, freshFor: settings.costlyCountsFreshFor)
    }

    // MARK: Claims

    /// A claim costs one store call, plus one write of the answer when it carries a hold
    /// token. The store is idempotent itself — it records every claim under its drop and
    /// Idempotency-Key, atomically, and replays it — so the begin-and-complete of the other
    /// POSTs is not needed: only the token, which the store keeps as a hash, must be kept
    /// here for a replay. A claim's key is therefore scoped by its drop, not by the API key
    /// that sent it (the stores know no API keys); the token kept here is per API key.
    func claim(_ request: APIRequest, drop dropText: String) async -> APIResponse {
        await answering(request, scope: .storefront, changesState: true, countAs: "claim") { caller, fields in
            let drop = try DropID(dropText)
            let user = try UserID(try fields.requiredString("user", maxLength: 512))
            try fields.finish()
            try await self.admit(caller, shopper: user)
            let key = try IdempotencyKey(request.idempotencyKey ?? "")
            // Every unit is sold, for good: the answer this key gets whenever it comes, from memory.
            if let sold = self.router.soldOutAnswer(drop, key: key) { return sold }
            let (store, cancelled) = try await self.router.route(drop)
            if cancelled { throw Problem(.dropCancelled, "drop \(drop) was cancelled") }
            // The service's own kept answer, for stores that do not keep tokens (named only then:
            // a Redis claim needs neither the key nor the hash).
            func scoped() -> String { caller.keyID + ":claim:" + drop.rawValue + ":" + key.rawValue }
            func fingerprint() -> [UInt8] { Self.claimFingerprint(user) }
            let outcome = try await store.claim(ClaimRequest(drop: drop, user: user, idempotencyKey: key))
            if case .rejected(.soldOut) = outcome.decision { await self.router.noteSoldOut(drop, store: store) }
            // A store that keeps tokens replays the first answer whole: rendered again, it is
            // the same bytes. Otherwise the answer this service kept has the token.
            if outcome.replayed && outcome.holdToken == nil && Self.carriesToken(outcome.decision),
                let kept = try await self.idempotency.peek(key: scoped(), fingerprint: fingerprint()),
                let replay = try self.replayKeptClaim(kept, scoped())
            {
                return replay
            }
            // A replay whose answer was not kept (the process died between the store and the
            // write, the answer outlived its 25 h, or it was sealed with another key) is the
            // store's: the outcome, no token.
            let response = self.render(outcome, drop: drop)
            if outcome.holdToken != nil && !outcome.replayed && !store.keepsHoldTokens {
                // Kept sealed, as hex (the stores keep bodies as text): the answer has the token,
                // which is stored nowhere in the clear.
                let sealed = self.settings.holdTokenSeal.seal(response.body, context: Array(scoped().utf8))
                let record = IdempotencyRecord(
                    fingerprint: fingerprint(), status: response.status, body: Array(Hex.encode(sealed).utf8))
                do {
                    try await self.idempotency.complete(
                        key: scoped(), record: record, keepFor: self.settings.idempotencyKeepFor)
                } catch {
                    // The claim stands and this answer has its token; only a retry would miss it.
                    self.metrics.storeError((error as? DibsError)?.code.name ?? "internal-error")
                    self.logger.warning("claim answer not kept", metadata: ["key": "\(scoped())", "error": "\(error)"])
                }
            }
            return response
        }
    }

    /// How `claimWithoutWaiting` went: answered at once, or started, its answer to come.
    enum ClaimWithoutWaiting {
        case answered(APIResponse)
        case started
    }

    /// A claim answered without Swift concurrency, as `claim` would answer it, when nothing
    /// but the rate limiter and the store needs I/O: the API key was checked moments ago, and
    /// the drop is known sold out for good or its store is known and keeps the claim's token
    /// itself (so nothing else is written). Then the HTTP server answers on the event loop
    /// that read the request: a sold-out drop's answer (or a 429) at once when the limits are
    /// kept in this process or off; otherwise after the limiter's `startAdmit` and the
    /// store's `startClaim` (on Redis, script calls on that same loop), which hand `then` the
    /// answer (once, on the thread they answer on). Nil when `claim` must answer: every
    /// request with a fault in it, a drop the router must look up or that was cancelled.
    func claimWithoutWaiting(
        _ request: APIRequest, drop dropText: String, then: @escaping @Sendable (APIResponse) -> Void
    ) -> ClaimWithoutWaiting? {
        guard let caller = authenticator.knownCaller(request.authorization, needs: .storefront),
            let keyText = request.idempotencyKey, let key = try? IdempotencyKey(keyText),
            Self.isJSON(request.contentType), let drop = try? DropID(dropText),
            var fields = try? JSONFields(parsing: request.body),
            let user = try? UserID(try fields.requiredString("user", maxLength: 512)), (try? fields.finish()) != nil
        else { return nil }
        let target: ClaimTarget
        if let soldOut = router.soldOutAnswer(drop, key: key) {
            target = .soldOut(soldOut)
        } else {
            guard let route = router.knownRoute(drop), !route.cancelled, route.store.keepsHoldTokens else { return nil }
            target = .store(route.store)
        }
        let claim = ClaimRequest(drop: drop, user: user, idempotencyKey: key)
        let buckets = rateBuckets(caller, shopper: user)
        if buckets.isEmpty { return claimAdmitted(claim, target, .allowed, then: then) }
        if let decision = limiter.admitWithoutIO(buckets) { return claimAdmitted(claim, target, decision, then: then) }
        limiter.startAdmit(buckets) { admitted in
            switch admitted {
            case .success(let decision):
                if case .answered(let response) = self.claimAdmitted(claim, target, decision, then: then) {
                    then(response)
                }
            case .failure(let error):
                let response = self.answer(error, path: request.path)
                self.countClaim(response)
                then(response)
            }
        }
        return .started
    }

    /// What answers a claim taken on the event loop.
    private enum ClaimTarget {
        /// The drop is sold out for good: this is the answer.
        case soldOut(APIResponse)
        case store(any LeaseStore)
    }

    /// The rest of `claimWithoutWaiting` once the rate limiter decided.
    private func claimAdmitted(
        _ claim: ClaimRequest, _ target: ClaimTarget, _ decision: RateDecision,
        then: @escaping @Sendable (APIResponse) -> Void
    ) -> ClaimWithoutWaiting {
        if case .limited(let bucket, let wait) = decision {
            let response = APIResponse(Self.limited(bucket, retryAfter: wait))
            countClaim(response)
            return .answered(response)
        }
        let store: any LeaseStore
        switch target {
        case .soldOut(let answer):
            countClaim(answer)
            return .answered(answer)
        case .store(let known): store = known
        }
        store.startClaim(claim) { result in
            let response: APIResponse
            switch result {
            case .success(let outcome):
                if case .rejected(.soldOut) = outcome.decision {
                    self.router.noteSoldOutInBackground(claim.drop, store: store)
                }
                response = self.render(outcome, drop: claim.drop)
            case .failure(let error):
                response = self.answer(error, path: "/v1/drops/\(claim.drop)/claims")
            }
            self.countClaim(response)
            then(response)
        }
        return .started
    }

    /// A kept claim answer, opened; nil when it does not open (sealed with another key).
    private func replayKeptClaim(_ kept: IdempotencyStart, _ scopedKey: String) throws -> APIResponse? {
        guard case .completed(let record) = kept else { return try replay(kept) }
        guard let sealed = Hex.decode(String(decoding: record.body, as: UTF8.self)),
            let body = settings.holdTokenSeal.open(sealed, context: Array(scopedKey.utf8))
        else { return nil }
        return APIResponse(
            replaying: IdempotencyRecord(fingerprint: record.fingerprint, status: record.status, body: body))
    }

    private static func carriesToken(_ decision: ClaimOutcome.Decision) -> Bool {
        switch decision {
        case .held, .waitlisted, .entered: true
        case .rejected: false
        }
    }

    private static func claimFingerprint(_ user: UserID) -> [UInt8] {
        Array(SHA256.hash(data: Array(("claim\u{0}" + user.rawValue).utf8)))
    }

    func status(_ request: APIRequest, claim claimText: String) async -> APIResponse {
        await answering(request, scope: .storefront, changesState: false) { caller, _ in
            try await self.admit(caller, shopper: nil)
            let claim = try ClaimID(claimText)
            let (store, _) = try await self.router.route(claim.drop)
            return .json(200, Render.status(try await store.status(of: claim)))
        }
    }

    func confirm(_ request: APIRequest, claim claimText: String) async -> APIResponse {
        await answering(request, scope: .storefront, changesState: true) { caller, fields in
            let claim = try ClaimID(claimText)
            let token = try HoldToken(try fields.requiredString("hold_token", maxLength: 64))
            let orderRef = try fields.string("order_ref", maxLength: 512)
            let fence = try fields.integer("fence", in: 1...Int64.max)
            try fields.finish()
            try await self.admit(caller, shopper: nil)
            let (store, cancelled) = try await self.router.route(claim.drop)
            if cancelled { throw Problem(.dropCancelled, "drop \(claim.drop) was cancelled") }
            return try await self.idempotently(
                self.scopedKey(caller, request.idempotencyKey!), self.fingerprint(request)
            ) {
                // Without a fence the claim's current one is used: the token still has to
                // match and the lease still has to be live.
                var current = fence.map(Fence.init)
                if current == nil { current = try await store.status(of: claim).fence }
                let confirm = try ConfirmRequest(
                    claim: claim, holdToken: token, fence: current ?? Fence(0), orderRef: orderRef)
                return .json(200, Render.sale(try await store.confirm(confirm)))
            }
        }
    }

    func release(_ request: APIRequest, claim claimText: String) async -> APIResponse {
        await answering(request, scope: .storefront, changesState: true) { caller, fields in
            let claim = try ClaimID(claimText)
            let token = try HoldToken(try fields.requiredString("hold_token", maxLength: 64))
            try fields.finish()
            try await self.admit(caller, shopper: nil)
            let (store, _) = try await self.router.route(claim.drop)
            return try await self.idempotently(
                self.scopedKey(caller, request.idempotencyKey!), self.fingerprint(request)
            ) {
                .json(200, Render.status(try await store.release(claim: claim, holdToken: token)))
            }
        }
    }

    // MARK: Health

    /// Whether every store answers: each is asked about a drop that does not exist.
    func ready() async -> APIResponse {
        let probe = try! DropID("dibs-readiness-probe")
        var failures: [String] = []
        for store in router.allStores {
            do {
                _ = try await store.counts(drop: probe)
            } catch let error as DibsError where error.code == .unknownDrop {
                continue
            } catch {
                failures.append("\(store.backendName): \(error)")
            }
        }
        if failures.isEmpty { return .json(200, Array(#"{"status":"ready"}"#.utf8)) }
        return APIResponse(Problem(.storeUnavailable, failures.joined(separator: "; ")))
    }

    // MARK: The common path

    /// Authenticates, reads the body (for POSTs) and runs `body`, turning whatever it throws
    /// into a problem answer.
    func answering(
        _ request: APIRequest, scope: APIScope, changesState: Bool, countAs: String? = nil,
        _ body: (Caller, inout JSONFields) async throws -> APIResponse
    ) async -> APIResponse {
        let response: APIResponse
        do {
            let caller: Caller
            do {
                caller = try await authenticator.authenticate(request.authorization, needs: scope)
            } catch let problem as Problem {
                // Failed attempts still cost the address a token: guessing keys is throttled.
                try await admitAddress(request)
                throw problem
            }
            var fields = JSONFields([:])
            if changesState {
                guard let key = request.idempotencyKey else {
                    throw Problem(.missingIdempotencyKey, "send an Idempotency-Key header with every POST")
                }
                do { _ = try IdempotencyKey(key) } catch {
                    throw Problem(.invalidHeader, "an Idempotency-Key is 1 to 255 characters of visible ASCII")
                }
                if !request.body.isEmpty, !Self.isJSON(request.contentType) {
                    throw Problem(.unsupportedMediaType, "send the body as application/json, in UTF-8")
                }
                fields = try JSONFields(parsing: request.body)
            }
            response = try await body(caller, &fields)
        } catch {
            response = answer(error, path: request.path)
        }
        if let countAs, countAs == "claim" { countClaim(response) }
        return response
    }

    /// The problem answer for what an operation threw.
    private func answer(_ error: any Error, path: String) -> APIResponse {
        switch error {
        case let problem as Problem: return APIResponse(problem)
        case let error as BodyError: return APIResponse(Problem(ProblemKind(body: error), error.detail))
        case let error as DibsError: return answer(error)
        default:
            logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(path)"])
            return APIResponse(Problem(.internalError, "the server failed unexpectedly; it is logged"))
        }
    }

    private func answer(_ error: DibsError) -> APIResponse {
        let problem = Problem(error)
        if problem.kind.status >= 500 {
            metrics.storeError(error.code.name)
            logger.warning("store error", metadata: ["code": "\(error.code)", "error": "\(error.message)"])
            return APIResponse(Problem(problem.kind, error.message, retryAfter: .seconds(1)))
        }
        return APIResponse(problem)
    }

    private func countClaim(_ response: APIResponse) {
        if response.replayed { return metrics.claim("replayed") }
        let outcome = response.outcome ?? "error"
        metrics.claim(DibsMetrics.claimOutcomes.contains(outcome) ? outcome : "error")
    }

    /// Runs a state-changing operation once per Idempotency-Key: a repeat replays the kept
    /// answer, a repeat while the first is running is `409`, another request under the same
    /// key is `422`. Answers of 5xx are not kept, so a retry runs again.
    func idempotently(
        _ key: String, _ fingerprint: [UInt8], _ operation: () async throws -> APIResponse
    ) async throws -> APIResponse {
        switch try await idempotency.begin(
            key: key, fingerprint: fingerprint, pendingFor: settings.idempotencyPendingFor)
        {
        case .started: break
        case let other: return try replay(other)
        }
        let response: APIResponse
        do {
            response = try await operation()
        } catch let problem as Problem {
            response = APIResponse(problem)
        } catch let error as DibsError {
            response = answer(error)
        } catch {
            try? await idempotency.abandon(key: key)
            throw error
        }
        if response.status >= 500 {
            try? await idempotency.abandon(key: key)
        } else {
            let record = IdempotencyRecord(fingerprint: fingerprint, status: response.status, body: response.body)
            try await idempotency.complete(key: key, record: record, keepFor: settings.idempotencyKeepFor)
        }
        return response
    }

    private func replay(_ start: IdempotencyStart) throws -> APIResponse {
        switch start {
        case .completed(let record): return APIResponse(replaying: record)
        case .inFlight: throw Problem(.idempotencyInFlight, "a request with this Idempotency-Key is still running")
        case .mismatch:
            throw Problem(.idempotencyKeyReused, "this Idempotency-Key was used with a different request")
        case .started: throw Problem(.internalError, "replay of a new key")
        }
    }

    /// Keys are scoped by the API key, so two storefronts cannot collide.
    func scopedKey(_ caller: Caller, _ key: String) -> String { caller.keyID + ":" + key }

    func fingerprint(_ request: APIRequest) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: Array(request.method.rawValue.utf8))
        hasher.update(data: Array(request.path.utf8))
        hasher.update(data: [0])
        hasher.update(data: request.body)
        return Array(hasher.finalize())
    }

    /// Takes a token from the caller's key and the shopper (if any). Not from the address: a
    /// storefront's backend sends every shopper's claims from a few addresses, so an
    /// authenticated caller is limited by its key; the address pays for requests without a
    /// valid key (`admitAddress`).
    func admit(_ caller: Caller, shopper: UserID?) async throws {
        try await take(rateBuckets(caller, shopper: shopper))
    }

    private func rateBuckets(_ caller: Caller, shopper: UserID?) -> [RateBucket] {
        var buckets: [RateBucket] = []
        if let limit = settings.perKeyLimit { buckets.append(RateBucket(key: "key:" + caller.keyID, limit: limit)) }
        if let shopper, let limit = settings.perShopperLimit {
            buckets.append(RateBucket(key: "user:" + shopper.rawValue, limit: limit))
        }
        return buckets
    }

    /// Takes a token from the client's address, for a request that carried no valid key.
    func admitAddress(_ request: APIRequest) async throws {
        guard let limit = settings.perIPLimit else { return }
        try await take([RateBucket(key: "ip:" + request.clientIP, limit: limit)])
    }

    private func take(_ buckets: [RateBucket]) async throws {
        guard !buckets.isEmpty else { return }
        if case .limited(let key, let wait) = try await limiter.admit(buckets) {
            throw Self.limited(key, retryAfter: wait)
        }
    }

    private static func limited(_ bucket: String, retryAfter wait: Duration) -> Problem {
        let what = bucket.prefix { $0 != ":" }
        let name = what == "ip" ? "client address" : what == "key" ? "API key" : "shopper"
        return Problem(.rateLimited, "too many requests for this \(name)", retryAfter: wait)
    }

    /// The one "sold out" problem of a drop: the same bytes however it was answered, so a
    /// key answered from memory and a key answered by the store replay alike.
    static func soldOut(_ drop: DropID) -> Problem {
        Problem(.soldOut, "every unit of \(drop) is held, sold or waited for")
    }

    /// Whether the media type (before any `;`) is `application/json`, any case, spaces and
    /// tabs ignored, read byte by byte as it is on every POST; and a `charset` parameter, if
    /// any, says UTF-8 (the bodies are read as UTF-8: a UTF-16 body is refused, not misread).
    private static func isJSON(_ contentType: String?) -> Bool {
        guard var contentType else { return false }
        return contentType.withUTF8 { bytes in
            let expected = "application/json".utf8
            var next = expected.startIndex
            for (offset, byte) in bytes.enumerated() {
                if byte == UInt8(ascii: ";") {
                    return next == expected.endIndex && charsetIsUTF8(parameters: bytes[(offset + 1)...])
                }
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { continue }
                let lower = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 : byte
                guard next != expected.endIndex, expected[next] == lower else { return false }
                next = expected.index(after: next)
            }
            return next == expected.endIndex
        }
    }

    /// Whether a media type's parameters (after its first `;`) name no charset but UTF-8:
    /// `charset=utf-8`, in any case, quoted or not.
    private static func charsetIsUTF8(parameters: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        func trimmed(_ text: Substring) -> Substring {
            var text = text
            while text.first == " " || text.first == "\t" { text.removeFirst() }
            while text.last == " " || text.last == "\t" { text.removeLast() }
            return text
        }
        for parameter in String(decoding: parameters, as: UTF8.self).split(separator: ";") {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            guard pair.count == 2, trimmed(pair[0]).lowercased() == "charset" else { continue }
            var value = trimmed(pair[1])
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            if value.lowercased() != "utf-8" { return false }
        }
        return true
    }

    static func time(_ text: String?, _ name: String) throws -> Timestamp? {
        guard let text else { return nil }
        guard let time = RFC3339.parse(text) else {
            throw Problem(.invalidField, "\"\(name)\" must be an RFC 3339 time such as 2026-11-27T09:00:00Z")
        }
        return time
    }
}

extension DibsService {
    /// Sets the gauges of every drop this process has routed to (leases held, waitlist).
    public func sampleDropGauges() async {
        for drop in router.knownDrops {
            guard let (store, _) = try? await router.route(drop), let snapshot = try? await store.counts(drop: drop)
            else { continue }
            metrics.record(snapshot)
        }
    }
}
