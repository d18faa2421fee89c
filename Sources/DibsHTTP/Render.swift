import DibsCore

/// The JSON bodies of successful answers, written field by field (see `JSONWriter`).
enum Render {
    static func status(_ status: ClaimStatus) -> [UInt8] {
        var json = JSONWriter()
        json.field("claim", status.claim.description)
        json.field("user", status.user.rawValue)
        json.field("state", status.state.rawValue)
        json.field("unit", status.unit)
        json.field("fence", status.fence?.value)
        json.field("expires_at", status.expiresAt.map(RFC3339.format))
        json.field("rejection", status.rejection?.rawValue)
        return json.finish()
    }

    static func sale(_ sale: Sale) -> [UInt8] {
        var json = JSONWriter()
        json.field("claim", sale.claim.description)
        json.field("state", ClaimState.confirmed.rawValue)
        json.field("drop", sale.drop.rawValue)
        json.field("unit", sale.unit)
        json.field("fence", sale.fence.value)
        json.field("order_ref", sale.orderRef)
        return json.finish()
    }

    static func drop(_ config: DropConfig, _ snapshot: DropSnapshot, backend: String, cancelled: Bool, now: Timestamp)
        -> [UInt8]
    {
        let state: String
        if cancelled {
            state = "cancelled"
        } else if let rejection = config.window(at: now) {
            state = rejection == .notOpen ? "scheduled" : "closed"
        } else {
            state = snapshot.sold == snapshot.units ? "sold-out" : "open"
        }
        var json = JSONWriter(capacity: 384)
        json.field("id", config.id.rawValue)
        json.field("state", state)
        json.field("backend", backend)
        json.field("mode", config.mode.rawValue)
        json.field("units", config.units)
        json.field("free", snapshot.free)
        json.field("held", snapshot.held)
        json.field("sold", snapshot.sold)
        json.field("waitlisted", snapshot.waitlisted)
        json.field("hold_ttl_seconds", config.holdTTL.components.seconds)
        json.field("per_user_limit", config.perUserLimit)
        json.field("waitlist_capacity", config.waitlistCapacity)
        json.field("opens_at", RFC3339.format(config.opensAt))
        json.field("closes_at", config.closesAt.map(RFC3339.format))
        return json.finish()
    }
}

extension DibsService {
    /// A claim's answer: `201` held, `202` waitlisted or entered, a problem otherwise.
    func render(_ outcome: ClaimOutcome, drop: DropID) -> APIResponse {
        var json = JSONWriter()
        let status: Int
        let state: String
        switch outcome.decision {
        case .rejected(.soldOut):
            return APIResponse(Self.soldOut(drop))
        case .rejected(let rejection):
            var detail = "drop \(drop): \(rejection.rawValue)"
            if let claim = outcome.claim { detail += " (claim \(claim))" }
            return APIResponse(Problem(ProblemKind(rejection: rejection), detail))
        case .held(let unit, let fence, let expiresAt):
            status = 201
            state = "held"
            json.field("claim", outcome.claim?.description)
            json.field("state", state)
            json.field("unit", unit)
            json.field("fence", fence.value)
            json.field("expires_at", RFC3339.format(expiresAt))
        case .waitlisted(let position), .entered(let position):
            status = 202
            if case .waitlisted = outcome.decision { state = "waitlisted" } else { state = "entered" }
            json.field("claim", outcome.claim?.description)
            json.field("state", state)
            json.field("position", position)
        }
        json.field("hold_token", outcome.holdToken?.description)
        // A replay with its token (from a store that keeps it) is the first answer again,
        // byte for byte, marked only by the header; one without says so in the body.
        let whole = outcome.replayed && outcome.holdToken != nil
        if outcome.replayed && !whole { json.field("replayed", true) }
        var response = APIResponse.json(status, json.finish())
        response.outcome = outcome.replayed ? "replayed" : state
        response.replayed = whole
        return response
    }
}
