public import DibsCore
import Logging

/// The Redis lease store: one Lua script per operation, atomic in Redis, one round trip.
/// Redis is the gate, not the ledger: drops and sales are recorded in the `SaleLedger`
/// (Postgres), so a confirmed sale survives Redis.
///
/// A confirm takes three steps, and a crash between any two leaves the unit sold and
/// recorded, or recoverable — never sold twice, never silently lost:
///
/// 1. `confirmBegin` (Redis) checks token, fence and lease and marks the claim
///    `confirming`, stretching its lease by `confirmGrace`.
///    Crash after it: no sale anywhere. A retry of the confirm goes on from step 2. Without
///    a retry the stretched lease runs out and the unit goes to the limbo set (not back on
///    sale: the store cannot tell this case from the next one); `inspect` counts it held
///    until the reconciler (next wave) or a retry settles it.
/// 2. `recordSale` (Postgres) inserts the sale, unique per `(drop, unit)`, with its fence.
///    Crash after it: the sale is durable, Redis still says `confirming`. A retry finds the
///    sale already recorded (same claim and fence: success) and finishes step 3. Without a
///    retry the unit waits in limbo, sold in the ledger, never leased again.
/// 3. `confirmCommit` (Redis) marks the claim confirmed and the unit sold.
///    Crash after it: done; a retry answers the same sale.
///
/// The confirm answers success only after step 2, so a 2xx means the sale is in Postgres.
public struct RedisLeaseStore: LeaseStore {
    public var backendName: String { "redis" }
    /// The claim script keeps each token with its claim, masked (`Configuration.holdTokenSeal`).
    public var keepsHoldTokens: Bool { true }
    /// Zero: the claim script checks `sold` first, atomically with recording its answer.
    public var soldAnswersSettle: Duration { .zero }

    /// Settings of the store.
    public struct Configuration: Sendable {
        /// How much longer a lease lives once its confirm has begun, so it cannot run out
        /// while the sale is written to Postgres.
        public var confirmGrace: Duration = .seconds(30)
        /// Masks the token kept with each claim (for its replay). Every process serving a
        /// drop needs the same key; the default is this process's own.
        public var holdTokenSeal = HoldTokenSeal.random()

        /// The defaults.
        public init() {}
    }

    /// Where a test makes the store stop, as if the process died there.
    enum CrashPoint: Sendable {
        case afterConfirmBegin, afterSaleRecorded, afterConfirmCommit
    }

    private let client: RedisClient
    private let ledger: any SaleLedger
    private let configuration: Configuration
    private let crashPoint: CrashPoint?

    /// Makes a store on a Redis client and the ledger its sales go to.
    public init(client: RedisClient, ledger: any SaleLedger, configuration: Configuration = Configuration()) {
        self.init(client: client, ledger: ledger, configuration: configuration, crashPoint: nil)
    }

    init(client: RedisClient, ledger: any SaleLedger, configuration: Configuration, crashPoint: CrashPoint?) {
        self.client = client
        self.ledger = ledger
        self.configuration = configuration
        self.crashPoint = crashPoint
    }

    static func prefix(_ drop: DropID) -> String { "dibs:{\(drop.rawValue)}:" }

    public func createDrop(_ config: DropConfig) async throws {
        if case .exists(let backend) = try await ledger.registerDrop(config, backend: "redis"), backend != "redis" {
            throw DibsError(.dropExists, "drop \(config.id) exists already, on \(backend)")
        }
        // A drop registered in the ledger but not in Redis (a crash between the two, or a
        // Redis that lost its data) is created in Redis now.
        let reply = try await client.eval(
            LeaseScripts.create, keys: [Self.prefix(config.id)],
            arguments: [
                String(config.units), String(config.holdTTL.wholeMilliseconds), String(config.perUserLimit),
                String(config.waitlistCapacity), config.mode.rawValue, String(config.opensAt.milliseconds),
                config.closesAt.map { String($0.milliseconds) } ?? "",
            ])
        switch reply.text {
        case "ok": return
        case "drop-exists": throw DibsError(.dropExists, "drop \(config.id) exists already")
        default: throw unexpected(reply)
        }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimOutcome {
        let token = HoldToken.random()
        let reply = try await client.eval(
            LeaseScripts.claim, keys: [Self.prefix(request.drop)], arguments: claimArguments(request, token))
        return try claimOutcome(reply, request, token)
    }

    /// The claim script's one round trip, answered on the event loop of the Redis connection
    /// (the caller's, when it runs on one), with no task.
    public func startClaim(
        _ request: ClaimRequest, then done: @escaping @Sendable (Result<ClaimOutcome, any Error>) -> Void
    ) {
        let token = HoldToken.random()
        client.startEval(
            LeaseScripts.claim, keys: [Self.prefix(request.drop)], arguments: claimArguments(request, token)
        ) { [self] reply in
            done(reply.mapError { $0 }.flatMap { reply in Result { try claimOutcome(reply, request, token) } })
        }
    }

    private func claimArguments(_ request: ClaimRequest, _ token: HoldToken) -> [String] {
        [
            request.user.rawValue, request.idempotencyKey.rawValue, token.hash.description,
            configuration.holdTokenSeal.mask(token, drop: request.drop, key: request.idempotencyKey),
        ]
    }

    private func claimOutcome(_ reply: RESPValue, _ request: ClaimRequest, _ token: HoldToken) throws(DibsError)
        -> ClaimOutcome
    {
        let seal = configuration.holdTokenSeal
        let answer = try StoreAnswer(reply, drop: request.drop) { kept in
            // The masked token (32 hex digits), then its hash (64).
            guard kept.utf8.count == 96, let hash = try? HoldTokenHash(hex: String(kept.dropFirst(32))) else {
                return nil
            }
            return seal.unmask(String(kept.prefix(32)), hash: hash, drop: request.drop, key: request.idempotencyKey)
        }
        if answer.code == "idempotency-key-reused" {
            throw DibsError(
                .idempotencyKeyReused, "Idempotency-Key \(request.idempotencyKey) was used for another shopper's claim")
        }
        try answer.check(drop: request.drop)
        return try answer.outcome(token: token)
    }

    public func confirm(_ request: ConfirmRequest) async throws -> Sale {
        let drop = request.claim.drop
        let begun = try await call(
            LeaseScripts.confirmBegin, drop,
            [
                String(request.claim.number), request.holdToken.hash.description, String(request.fence.value),
                String(configuration.confirmGrace.wholeMilliseconds),
            ])
        try begun.check(claim: request.claim)
        guard let unit = begun.unit else { throw DibsError(.internalError, "confirm began without a unit") }
        if crashPoint == .afterConfirmBegin { throw SimulatedCrash() }
        let orderRef = begun.state == "confirmed" ? begun.orderRef : request.orderRef
        let sale = Sale(drop: drop, unit: unit, claim: request.claim, fence: request.fence, orderRef: orderRef)
        try await ledger.recordSale(sale)
        if crashPoint == .afterSaleRecorded { throw SimulatedCrash() }
        let committed = try await call(
            LeaseScripts.confirmCommit, drop,
            [String(request.claim.number), String(request.fence.value), orderRef ?? ""])
        try committed.check(claim: request.claim)
        if crashPoint == .afterConfirmCommit { throw SimulatedCrash() }
        return sale
    }

    public func release(claim: ClaimID, holdToken: HoldToken) async throws -> ClaimStatus {
        let answer = try await call(
            LeaseScripts.release, claim.drop, [String(claim.number), holdToken.hash.description])
        try answer.check(claim: claim)
        return try answer.status()
    }

    public func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) async throws -> Lease {
        let answer = try await call(
            LeaseScripts.extend, claim.drop, [String(claim.number), holdToken.hash.description, String(fence.value)])
        try answer.check(claim: claim)
        guard let unit = answer.unit, let expiresAt = answer.expiresAt else {
            throw DibsError(.internalError, "extend answered without a lease")
        }
        return Lease(drop: claim.drop, unit: unit, claim: claim, fence: fence, expiresAt: expiresAt)
    }

    public func reapExpired(drop: DropID) async throws -> ReapReport {
        let reply = try await client.eval(LeaseScripts.reap, keys: [Self.prefix(drop)], arguments: [])
        guard case .array(let parts) = reply, parts.count == 3 else { throw unexpected(reply) }
        try StoreAnswer.check(parts[0].text ?? "", drop: drop, claim: nil)
        return ReapReport(expired: Int(parts[1].integer ?? 0), promoted: Int(parts[2].integer ?? 0))
    }

    public func status(of claim: ClaimID) async throws -> ClaimStatus {
        let answer = try await call(LeaseScripts.status, claim.drop, [String(claim.number)])
        try answer.check(claim: claim)
        return try answer.status()
    }

    public func inspect(drop: DropID) async throws -> DropSnapshot {
        try await snapshot(drop, leases: true)
    }

    public func counts(drop: DropID) async throws -> DropSnapshot {
        try await snapshot(drop, leases: false)
    }

    private func snapshot(_ drop: DropID, leases withLeases: Bool) async throws -> DropSnapshot {
        let reply = try await client.eval(
            LeaseScripts.inspect, keys: [Self.prefix(drop)], arguments: [withLeases ? "leases" : "counts"])
        guard case .array(let parts) = reply, let code = parts.first?.text else { throw unexpected(reply) }
        try StoreAnswer.check(code, drop: drop, claim: nil)
        guard parts.count == 8, case .array(let flat) = parts[7] else { throw unexpected(reply) }
        var leases: [Lease] = []
        var index = 0
        while index + 3 < flat.count {
            if let unit = flat[index].integer, let claim = flat[index + 1].integer, let fence = flat[index + 2].integer,
                let expires = flat[index + 3].integer
            {
                leases.append(
                    Lease(
                        drop: drop, unit: Int(unit), claim: ClaimID(drop: drop, number: claim), fence: Fence(fence),
                        expiresAt: Timestamp(milliseconds: expires)))
            }
            index += 4
        }
        let number = { (i: Int) in Int(parts[i].integer ?? 0) }
        // Units in limbo (a confirm that did not finish) are neither free nor sold: held.
        return DropSnapshot(
            drop: drop, units: number(1), free: number(2), held: number(3), sold: number(4), waitlisted: number(5),
            leases: leases)
    }

    /// The keys of `keys` whose claim is not marked `-` (first answered "sold out"). Read in
    /// pages (`HSCAN`), not with one `HGETALL`: a large drop holds a key per unit and more, and
    /// one call listing a million of them would stall Redis, and every claim, at the moment the
    /// drop sells out. No key not marked is added by then (every new key is answered "sold
    /// out"), so the pages see all of those.
    public func answeredKeys(drop: DropID) async throws -> Set<IdempotencyKey> {
        var keys = Set<IdempotencyKey>()
        var cursor = "0"
        repeat {
            let reply = try await client.send(["HSCAN", Self.prefix(drop) + "keys", cursor, "COUNT", "10000"])
            guard case .array(let page) = reply, page.count == 2, let next = page[0].text,
                case .array(let pairs) = page[1], pairs.count % 2 == 0
            else { throw unexpected(reply) }
            for index in stride(from: 0, to: pairs.count, by: 2) {
                guard case .bulk(let claim) = pairs[index + 1], let key = pairs[index].text else {
                    throw unexpected(reply)
                }
                if claim.first != UInt8(ascii: "-") { keys.insert(try IdempotencyKey(key)) }
            }
            cursor = next
        } while cursor != "0"
        return keys
    }

    public func configuration(of drop: DropID) async throws -> DropConfig {
        try await ledger.dropConfiguration(drop)
    }

    /// Records the window in the ledger first (which validates it), then in Redis, which
    /// answers claims by it. A failure in between leaves the two apart until a retry.
    public func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig {
        let config = try await ledger.rescheduleDrop(drop, opensAt: opensAt, closesAt: closesAt)
        let reply = try await client.eval(
            LeaseScripts.reschedule, keys: [Self.prefix(drop)],
            arguments: [String(opensAt.milliseconds), closesAt.map { String($0.milliseconds) } ?? ""])
        switch reply.text {
        case "ok": return config
        case "unknown-drop": throw DibsError(.unknownDrop, "no drop \(drop) in Redis")
        default: throw unexpected(reply)
        }
    }

    private func call(_ script: Script, _ drop: DropID, _ arguments: [String]) async throws -> StoreAnswer {
        let reply = try await client.eval(script, keys: [Self.prefix(drop)], arguments: arguments)
        return try StoreAnswer(reply, drop: drop)
    }

    private func unexpected(_ reply: RESPValue) -> DibsError {
        if case .error(let message) = reply { return DibsError(.internalError, "Redis refused a script: \(message)") }
        return DibsError(.internalError, "Redis answered \(reply)")
    }
}

/// Thrown where a test stops the store as if the process died.
struct SimulatedCrash: Error {}

extension StoreAnswer {
    /// Decodes a script's answer, one string of twelve fields joined by newlines (`pack` in
    /// `LeaseScripts`): code, claim, user, state, rejection, unit, fence, expires, position,
    /// replayed, kept hold token (masked, and its hash: `openToken` opens it), order ref — the
    /// last, as it alone may hold a newline. Empty for nothing.
    init(_ reply: RESPValue, drop: DropID, openToken: (String) -> HoldToken? = { _ in nil }) throws(DibsError) {
        guard case .bulk(let bytes) = reply else {
            if case .error(let message) = reply {
                throw DibsError(.internalError, "Redis refused a script: \(message)")
            }
            throw DibsError(.internalError, "Redis answered \(reply)")
        }
        let parts = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 11, omittingEmptySubsequences: false)
        guard parts.count == 12 else {
            throw DibsError(
                .internalError,
                "a script answered \(parts.count) fields, not 12: \(String(decoding: bytes, as: UTF8.self))")
        }
        func text(_ index: Int) -> String? {
            parts[index].isEmpty ? nil : String(decoding: parts[index], as: UTF8.self)
        }
        self.init(code: text(0) ?? "")
        claim = text(1).flatMap(Int64.init).map { ClaimID(drop: drop, number: $0) }
        user = text(2)
        state = text(3)
        rejection = text(4)
        unit = text(5).flatMap { Int($0) }
        fence = text(6).flatMap(Int64.init).map(Fence.init)
        expiresAt = text(7).flatMap(Int64.init).map { Timestamp(milliseconds: $0) }
        position = text(8).flatMap { Int($0) }
        replayed = text(9) == "1"
        keptToken = text(10).flatMap(openToken)
        orderRef = text(11)
    }
}
