/// The state of one drop and every operation on it, as a pure value type: no clock, no
/// locks, no I/O. `MemoryLeaseStore` runs it inside an actor; it is also the reference
/// model the other stores are held to.
///
/// Every operation first ends the leases that expired by `now` and promotes waitlisted
/// claims onto the freed units, oldest first, so the answer is the one a store that reaped
/// continuously would give.
struct DropLedger: Sendable {
    struct ClaimRecord: Sendable {
        let user: UserID
        let key: IdempotencyKey
        /// Kept for replays, as the Redis store keeps it; confirms check against its hash.
        let token: HoldToken?
        var state: ClaimState
        var unit: Int?
        var fence: Fence?
        var expiresAt: Timestamp?
        var rejection: ClaimRejection?
        var orderRef: String?
        /// The place in line (waitlisted) or the entry number (draw) when first answered.
        var position: Int?
        /// The expiry of a first answer that held, for replays after an extend.
        var firstExpiresAt: Timestamp?
    }

    private(set) var config: DropConfig
    private(set) var claims: [ClaimRecord] = []  // claim number n is at index n - 1
    private var claimByKey: [IdempotencyKey: Int64] = [:]
    private var liveByUser: [UserID: Int] = [:]
    /// Free units as a stack, lowest on top at the start.
    private var freeUnits: [Int]
    /// The claim holding each held unit.
    private var holderOfUnit: [Int: Int64] = [:]
    private(set) var soldCount = 0
    /// Waitlisted claim numbers in arrival order; `waitlistHead` skips those that left.
    private var waitlist: [Int64] = []
    private var waitlistHead = 0
    private var waitlistCount = 0
    private var entries = 0
    private var lastFence: Int64 = 0
    /// Leases by expiry, lazily cleaned: an entry is current only if it still matches.
    private var expiries = MinHeap<ExpiryEntry>()

    struct ExpiryEntry: Comparable, Sendable {
        let expiresAt: Timestamp
        let claim: Int64
        static func < (a: ExpiryEntry, b: ExpiryEntry) -> Bool {
            (a.expiresAt, a.claim) < (b.expiresAt, b.claim)
        }
    }

    init(config: DropConfig) {
        self.config = config
        freeUnits = Array((0..<config.units).reversed())
    }

    // MARK: Operations

    mutating func claim(_ request: ClaimRequest, now: Timestamp) throws(DibsError) -> ClaimOutcome {
        if let number = claimByKey[request.idempotencyKey] {
            let record = claims[Int(number - 1)]
            guard record.user == request.user else {
                throw DibsError(
                    .idempotencyKeyReused,
                    "Idempotency-Key \(request.idempotencyKey) was used for another shopper's claim")
            }
            return replay(number: number, record: record)
        }
        if let rejection = config.window(at: now) {
            return ClaimOutcome(claim: nil, decision: .rejected(rejection), holdToken: nil, replayed: false)
        }
        _ = settle(now: now)
        // Every unit sold is for good: any new claim is "sold out", a shopper at the limit
        // too. So once a drop is seen sold, no later claim can add to `answeredKeys`.
        if soldCount == config.units {
            return record(request, state: .rejected, rejection: .soldOut, token: nil)
        }
        let live = liveByUser[request.user, default: 0]
        if live >= config.perUserLimit {
            return record(request, state: .rejected, rejection: .limitReached, token: nil)
        }
        let token = HoldToken.random()
        if config.mode == .draw {
            entries += 1
            liveByUser[request.user] = live + 1
            return record(request, state: .entered, position: entries, token: token)
        }
        if let unit = freeUnits.popLast() {
            liveByUser[request.user] = live + 1
            return record(request, state: .held, leasing: (unit, now), token: token)
        }
        if !holderOfUnit.isEmpty && waitlistCount < config.waitlistCapacity {
            liveByUser[request.user] = live + 1
            let number = Int64(claims.count + 1)
            waitlist.append(number)
            waitlistCount += 1
            return record(request, state: .waitlisted, position: waitlistCount, token: token)
        }
        return record(request, state: .rejected, rejection: .soldOut, token: nil)
    }

    mutating func confirm(_ request: ConfirmRequest, now: Timestamp) throws(DibsError) -> Sale {
        _ = settle(now: now)
        let number = request.claim.number
        var record = try authorized(request.claim, request.holdToken)
        switch record.state {
        case .confirmed where record.fence == request.fence:
            return sale(number: number, record: record)
        case .held:
            guard record.fence == request.fence else {
                throw DibsError(.staleFence, "fence \(request.fence) is not the current lease's fence")
            }
            record.state = .confirmed
            record.orderRef = request.orderRef
            claims[Int(number - 1)] = record
            holderOfUnit[record.unit!] = nil
            soldCount += 1
            return sale(number: number, record: record)
        case .expired:
            throw DibsError(
                .leaseExpired, "the lease on unit \(record.unit ?? -1) expired; it can no longer be confirmed")
        case .confirmed:
            throw DibsError(.staleFence, "fence \(request.fence) is not the fence the claim was confirmed under")
        default:
            throw DibsError(.notHeld, "a \(record.state.rawValue) claim cannot be confirmed")
        }
    }

    mutating func release(_ claim: ClaimID, token: HoldToken, now: Timestamp) throws(DibsError) -> ClaimStatus {
        _ = settle(now: now)
        let number = claim.number
        var record = try authorized(claim, token)
        switch record.state {
        case .held:
            record.state = .released
            claims[Int(number - 1)] = record
            holderOfUnit[record.unit!] = nil
            freeUnits.append(record.unit!)
            liveByUser[record.user, default: 1] -= 1
            promoteWaitlist(now: now)
        case .waitlisted:
            record.state = .lapsed
            claims[Int(number - 1)] = record
            waitlistCount -= 1
            liveByUser[record.user, default: 1] -= 1
        case .entered:
            record.state = .lost
            claims[Int(number - 1)] = record
            liveByUser[record.user, default: 1] -= 1
        case .released, .lapsed, .lost, .expired:
            break  // already out: releasing again is a no-op
        case .confirmed:
            throw DibsError(.notHeld, "a confirmed claim cannot be released")
        case .rejected:
            throw DibsError(.notHeld, "a rejected claim holds nothing to release")
        }
        return status(number: number, record: claims[Int(number - 1)])
    }

    mutating func extend(_ claim: ClaimID, token: HoldToken, fence: Fence, now: Timestamp) throws(DibsError) -> Lease {
        _ = settle(now: now)
        let number = claim.number
        var record = try authorized(claim, token)
        switch record.state {
        case .held:
            guard record.fence == fence else {
                throw DibsError(.staleFence, "fence \(fence) is not the current lease's fence")
            }
            record.expiresAt = now.adding(config.holdTTL)
            claims[Int(number - 1)] = record
            expiries.push(ExpiryEntry(expiresAt: record.expiresAt!, claim: number))
            return Lease(drop: config.id, unit: record.unit!, claim: claim, fence: fence, expiresAt: record.expiresAt!)
        case .expired:
            throw DibsError(.leaseExpired, "the lease expired; it can no longer be extended")
        default:
            throw DibsError(.notHeld, "a \(record.state.rawValue) claim has no lease to extend")
        }
    }

    /// Ends every lease that expired by `now`, then fills freed units from the waitlist.
    func answeredKeys() -> Set<IdempotencyKey> {
        Set(claims.lazy.filter { !($0.state == .rejected && $0.rejection == .soldOut) }.map(\.key))
    }

    mutating func reschedule(opensAt: Timestamp, closesAt: Timestamp?) throws(DibsError) {
        config = try config.rescheduled(opensAt: opensAt, closesAt: closesAt)
    }

    mutating func settle(now: Timestamp) -> ReapReport {
        var expired = 0
        while let top = expiries.peek, top.expiresAt <= now {
            _ = expiries.pop()
            var record = claims[Int(top.claim - 1)]
            guard record.state == .held, record.expiresAt == top.expiresAt else { continue }  // stale entry
            record.state = .expired
            claims[Int(top.claim - 1)] = record
            holderOfUnit[record.unit!] = nil
            freeUnits.append(record.unit!)
            liveByUser[record.user, default: 1] -= 1
            expired += 1
        }
        let promoted = promoteWaitlist(now: now)
        return ReapReport(expired: expired, promoted: promoted)
    }

    func status(of claim: ClaimID) throws(DibsError) -> ClaimStatus {
        guard claim.number >= 1, claim.number <= claims.count else {
            throw DibsError(.unknownClaim, "no claim \(claim)")
        }
        return status(number: claim.number, record: claims[Int(claim.number - 1)])
    }

    func snapshot(withLeases: Bool = true) -> DropSnapshot {
        guard withLeases else {
            return DropSnapshot(
                drop: config.id, units: config.units, free: freeUnits.count, held: holderOfUnit.count,
                sold: soldCount, waitlisted: waitlistCount, leases: [])
        }
        let leases = holderOfUnit.map { unit, number in
            let record = claims[Int(number - 1)]
            return Lease(
                drop: config.id, unit: unit, claim: ClaimID(drop: config.id, number: number), fence: record.fence!,
                expiresAt: record.expiresAt!)
        }.sorted { ($0.expiresAt, $0.unit) < ($1.expiresAt, $1.unit) }
        return DropSnapshot(
            drop: config.id, units: config.units, free: freeUnits.count, held: holderOfUnit.count, sold: soldCount,
            waitlisted: waitlistCount, leases: leases)
    }

    // MARK: Steps

    @discardableResult
    private mutating func promoteWaitlist(now: Timestamp) -> Int {
        var promoted = 0
        while waitlistCount > 0, let unit = freeUnits.popLast() {
            var number: Int64
            repeat {
                number = waitlist[waitlistHead]
                waitlistHead += 1
            } while claims[Int(number - 1)].state != .waitlisted
            waitlistCount -= 1
            lease(unit: unit, to: number, now: now)
            promoted += 1
        }
        if waitlistHead > 4096 && waitlistHead * 2 > waitlist.count {
            waitlist.removeFirst(waitlistHead)
            waitlistHead = 0
        }
        return promoted
    }

    private mutating func lease(unit: Int, to number: Int64, now: Timestamp) {
        lastFence += 1
        var record = claims[Int(number - 1)]
        record.state = .held
        record.unit = unit
        record.fence = Fence(lastFence)
        record.expiresAt = now.adding(config.holdTTL)
        claims[Int(number - 1)] = record
        holderOfUnit[unit] = number
        expiries.push(ExpiryEntry(expiresAt: record.expiresAt!, claim: number))
    }

    private mutating func record(
        _ request: ClaimRequest, state: ClaimState, rejection: ClaimRejection? = nil, position: Int? = nil,
        leasing lease: (unit: Int, now: Timestamp)? = nil, token: HoldToken?
    ) -> ClaimOutcome {
        let number = Int64(claims.count + 1)
        claims.append(
            ClaimRecord(
                user: request.user, key: request.idempotencyKey, token: token, state: state,
                rejection: rejection, position: position))
        claimByKey[request.idempotencyKey] = number
        if let lease {
            self.lease(unit: lease.unit, to: number, now: lease.now)
            claims[Int(number - 1)].firstExpiresAt = claims[Int(number - 1)].expiresAt
        }
        let claim = ClaimID(drop: config.id, number: number)
        return ClaimOutcome(
            claim: claim, decision: firstDecision(claims[Int(number - 1)]), holdToken: token, replayed: false)
    }

    /// The answer a claim first got, rebuilt from its record for a replay. A claim first
    /// held keeps its unit and fence in the replay even after it was confirmed or expired.
    private func replay(number: Int64, record: ClaimRecord) -> ClaimOutcome {
        ClaimOutcome(
            claim: ClaimID(drop: config.id, number: number), decision: firstDecision(record), holdToken: record.token,
            replayed: true)
    }

    private func firstDecision(_ record: ClaimRecord) -> ClaimOutcome.Decision {
        if let rejection = record.rejection { return .rejected(rejection) }
        if config.mode == .draw { return .entered(position: record.position ?? 0) }
        if let position = record.position { return .waitlisted(position: position) }
        return heldDecision(record)
    }

    private func heldDecision(_ record: ClaimRecord) -> ClaimOutcome.Decision {
        .held(
            unit: record.unit ?? -1, fence: record.fence ?? Fence(0),
            expiresAt: record.firstExpiresAt ?? record.expiresAt ?? Timestamp(milliseconds: 0))
    }

    private func authorized(_ claim: ClaimID, _ token: HoldToken) throws(DibsError) -> ClaimRecord {
        guard claim.number >= 1, claim.number <= claims.count else {
            throw DibsError(.unknownClaim, "no claim \(claim)")
        }
        let record = claims[Int(claim.number - 1)]
        guard let kept = record.token, kept.hash.matches(token) else {
            throw DibsError(.invalidHoldToken, "the hold token does not belong to claim \(claim)")
        }
        return record
    }

    private func sale(number: Int64, record: ClaimRecord) -> Sale {
        Sale(
            drop: config.id, unit: record.unit!, claim: ClaimID(drop: config.id, number: number), fence: record.fence!,
            orderRef: record.orderRef)
    }

    private func status(number: Int64, record: ClaimRecord) -> ClaimStatus {
        ClaimStatus(
            claim: ClaimID(drop: config.id, number: number), user: record.user, state: record.state, unit: record.unit,
            fence: record.fence, expiresAt: record.expiresAt, rejection: record.rejection)
    }
}
