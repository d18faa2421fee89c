/// A claim as a backing store reports it — the row of a Postgres function or the array of
/// a Redis script — with the decoding both stores share: codes to `DibsError`s, states to
/// `ClaimOutcome` and `ClaimStatus`.
public struct StoreAnswer: Sendable {
    /// `ok`, or the name of a `DibsError.Code`.
    public var code: String
    public var claim: ClaimID?
    public var user: String?
    public var state: String?
    public var rejection: String?
    public var unit: Int?
    public var fence: Fence?
    public var expiresAt: Timestamp?
    public var position: Int?
    public var replayed: Bool
    public var orderRef: String?
    /// A replayed claim's hold token, from a store that keeps it with the claim.
    public var keptToken: HoldToken?

    /// An answer with only a code.
    public init(code: String) {
        self.code = code
        self.replayed = false
    }

    /// Throws the `DibsError` a non-`ok` code stands for.
    public func check(drop: DropID? = nil, claim: ClaimID? = nil) throws(DibsError) {
        try Self.check(code, drop: drop ?? claim?.drop, claim: claim)
    }

    /// Throws the `DibsError` a non-`ok` code stands for.
    public static func check(_ code: String, drop: DropID?, claim: ClaimID?) throws(DibsError) {
        switch code {
        case "ok": return
        case "unknown-drop": throw DibsError(.unknownDrop, "no drop \(drop?.description ?? "")")
        case "unknown-claim": throw DibsError(.unknownClaim, "no claim \(claim?.description ?? "")")
        case "invalid-hold-token":
            throw DibsError(.invalidHoldToken, "the hold token does not belong to claim \(claim?.description ?? "")")
        case "stale-fence": throw DibsError(.staleFence, "the fence is not the current lease's fence")
        case "lease-expired": throw DibsError(.leaseExpired, "the lease expired; it can no longer be used")
        case "not-held": throw DibsError(.notHeld, "the claim holds no lease for this operation")
        default: throw DibsError(.internalError, "the store answered \(code)")
        }
    }

    /// The claim's outcome; the token is shown on an answer that holds or queues: the one
    /// just made, or on a replay the one kept with the claim (if the store keeps it).
    public func outcome(token: HoldToken) throws(DibsError) -> ClaimOutcome {
        let decision: ClaimOutcome.Decision
        switch state {
        case "held":
            guard let unit, let fence, let expiresAt else { throw DibsError(.internalError, "held without a lease") }
            decision = .held(unit: unit, fence: fence, expiresAt: expiresAt)
        case "waitlisted": decision = .waitlisted(position: position ?? 0)
        case "entered": decision = .entered(position: position ?? 0)
        case "rejected":
            guard let reason = rejection.flatMap(ClaimRejection.init(rawValue:)) else {
                throw DibsError(.internalError, "rejected without a reason")
            }
            decision = .rejected(reason)
        default: throw DibsError(.internalError, "a claim answered \(state ?? "nothing")")
        }
        var shown: HoldToken? = replayed ? keptToken : token
        if case .rejected = decision { shown = nil }
        return ClaimOutcome(claim: claim, decision: decision, holdToken: shown, replayed: replayed)
    }

    /// The claim's status.
    public func status() throws(DibsError) -> ClaimStatus {
        guard let claim, let user, let state = state.flatMap(ClaimState.init(rawValue:)) else {
            throw DibsError(.internalError, "a claim status without claim, user or state")
        }
        return ClaimStatus(
            claim: claim, user: try UserID(user), state: state, unit: unit, fence: fence, expiresAt: expiresAt,
            rejection: rejection.flatMap(ClaimRejection.init(rawValue:)))
    }
}
