/// Where a claim is in its life. See DESIGN.md: `held → confirmed | released | expired`,
/// `waitlisted → held | lapsed`, `entered → held | lost`, `rejected`.
public enum ClaimState: String, Sendable, Hashable, CaseIterable {
    case held, confirmed, released, expired
    case waitlisted, lapsed
    case entered, lost
    case rejected

    /// Whether the claim counts against the shopper's per-user limit.
    public var isLive: Bool {
        switch self {
        case .held, .confirmed, .waitlisted, .entered: true
        default: false
        }
    }
}

/// Why a claim got no unit and no place in line.
public enum ClaimRejection: String, Sendable, Hashable, CaseIterable {
    /// Every unit is sold or held and the waitlist is full (or nothing can come back).
    case soldOut = "sold-out"
    /// The shopper already has `perUserLimit` live claims on this drop.
    case limitReached = "limit-reached"
    /// The drop does not take claims yet.
    case notOpen = "not-open"
    /// The drop no longer takes claims.
    case closed
}

/// A store's answer to a claim.
public struct ClaimOutcome: Sendable, Hashable {
    /// What the claim got.
    public enum Decision: Sendable, Hashable {
        /// A unit is reserved until `expiresAt` under `fence`.
        case held(unit: Int, fence: Fence, expiresAt: Timestamp)
        /// In line for a unit that may come back; `position` counts from 1.
        case waitlisted(position: Int)
        /// Entered in a draw; `position` is the entry's number, from 1.
        case entered(position: Int)
        /// No unit and no place in line.
        case rejected(ClaimRejection)
    }

    /// The recorded claim; `nil` for answers that are not recorded (drop not open or closed).
    public let claim: ClaimID?
    /// What the claim got.
    public let decision: Decision
    /// The hold token, shown once: present on the first answer of a held, waitlisted or
    /// entered claim, `nil` on a replay (the store keeps only its hash).
    public let holdToken: HoldToken?
    /// Whether this answer replays an earlier claim with the same Idempotency-Key.
    public let replayed: Bool

    /// Makes an outcome.
    public init(claim: ClaimID?, decision: Decision, holdToken: HoldToken?, replayed: Bool) {
        self.claim = claim
        self.decision = decision
        self.holdToken = holdToken
        self.replayed = replayed
    }
}

/// A claim request, validated.
public struct ClaimRequest: Sendable, Hashable {
    public let drop: DropID
    public let user: UserID
    public let idempotencyKey: IdempotencyKey

    /// Makes a request from validated parts.
    public init(drop: DropID, user: UserID, idempotencyKey: IdempotencyKey) {
        self.drop = drop
        self.user = user
        self.idempotencyKey = idempotencyKey
    }
}

/// A request to turn a held unit into a sale.
public struct ConfirmRequest: Sendable, Hashable {
    public let claim: ClaimID
    public let holdToken: HoldToken
    /// The fence the holder was given; a confirm under any other fence is refused.
    public let fence: Fence
    /// The storefront's order reference, kept with the sale (1 to 128 characters).
    public let orderRef: String?

    /// Makes a confirm request; `orderRef` is checked for length.
    public init(claim: ClaimID, holdToken: HoldToken, fence: Fence, orderRef: String? = nil) throws(DibsError) {
        if let orderRef, orderRef.unicodeScalars.count > 128 || orderRef.isEmpty {
            throw DibsError(.invalidInput, "an order reference is 1 to 128 characters")
        }
        self.claim = claim
        self.holdToken = holdToken
        self.fence = fence
        self.orderRef = orderRef
    }
}

/// A claim as the polling endpoint shows it (never its token).
public struct ClaimStatus: Sendable, Hashable {
    public let claim: ClaimID
    public let user: UserID
    public let state: ClaimState
    /// The unit, for held, confirmed, released and expired claims.
    public let unit: Int?
    /// The lease's fence, alongside `unit`.
    public let fence: Fence?
    /// When the lease ends (held) or ended.
    public let expiresAt: Timestamp?
    /// Why the claim was rejected, for rejected claims.
    public let rejection: ClaimRejection?

    /// Makes a status.
    public init(
        claim: ClaimID, user: UserID, state: ClaimState, unit: Int? = nil, fence: Fence? = nil,
        expiresAt: Timestamp? = nil, rejection: ClaimRejection? = nil
    ) {
        self.claim = claim
        self.user = user
        self.state = state
        self.unit = unit
        self.fence = fence
        self.expiresAt = expiresAt
        self.rejection = rejection
    }
}

/// A unit reserved for a claim until `expiresAt`.
public struct Lease: Sendable, Hashable {
    public let drop: DropID
    public let unit: Int
    public let claim: ClaimID
    public let fence: Fence
    public let expiresAt: Timestamp

    /// Makes a lease.
    public init(drop: DropID, unit: Int, claim: ClaimID, fence: Fence, expiresAt: Timestamp) {
        self.drop = drop
        self.unit = unit
        self.claim = claim
        self.fence = fence
        self.expiresAt = expiresAt
    }
}

/// A confirmed purchase: unique per drop and unit.
public struct Sale: Sendable, Hashable {
    public let drop: DropID
    public let unit: Int
    public let claim: ClaimID
    public let fence: Fence
    public let orderRef: String?

    /// Makes a sale record.
    public init(drop: DropID, unit: Int, claim: ClaimID, fence: Fence, orderRef: String?) {
        self.drop = drop
        self.unit = unit
        self.claim = claim
        self.fence = fence
        self.orderRef = orderRef
    }
}

/// A drop's live counts and its current leases.
public struct DropSnapshot: Sendable, Hashable {
    public let drop: DropID
    public let units: Int
    /// Units with no lease and no sale (expired leases not yet reaped count as held).
    public let free: Int
    public let held: Int
    public let sold: Int
    public let waitlisted: Int
    /// The current leases, soonest to expire first.
    public let leases: [Lease]

    /// Makes a snapshot.
    public init(drop: DropID, units: Int, free: Int, held: Int, sold: Int, waitlisted: Int, leases: [Lease]) {
        self.drop = drop
        self.units = units
        self.free = free
        self.held = held
        self.sold = sold
        self.waitlisted = waitlisted
        self.leases = leases
    }
}

/// What a reap did: leases ended and waitlisted claims moved up.
public struct ReapReport: Sendable, Hashable {
    public let expired: Int
    public let promoted: Int

    /// Makes a report.
    public init(expired: Int, promoted: Int) {
        self.expired = expired
        self.promoted = promoted
    }
}
