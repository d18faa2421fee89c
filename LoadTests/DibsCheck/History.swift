/// A recorded claim history of one drop: what `dibs-load` records, what the checker reads.
/// Times are nanoseconds on the client's one monotonic clock.
public struct History: Sendable, Codable {
    /// The drop's units and per-user limit.
    public var units: Int
    public var perUserLimit: Int
    public var operations: [Operation]
    /// The hold TTL in nanoseconds, if known: the safety check then takes a lease to last at
    /// least 99 % of it on the client clock after its grant was sent (the server's clock may
    /// be anywhere, but not run more than 1 % fast or jump).
    public var holdTTL: Int64?

    /// Makes a history.
    public init(units: Int, perUserLimit: Int, operations: [Operation], holdTTL: Int64? = nil) {
        self.units = units
        self.perUserLimit = perUserLimit
        self.operations = operations
        self.holdTTL = holdTTL
    }
}

extension History {
    /// The same history with every expiry free to fall anywhere after its lease's grant was
    /// sent (plus 99 % of the TTL when known): what remains true then does not depend on how
    /// server times map to the client.
    public func withExpiriesUnbounded() -> History {
        let life = (holdTTL ?? 0) / 100 * 99
        var grantInvoke: [LeaseID: Int64] = [:]
        for operation in operations {
            if case .held(let unit, let fence) = operation.result {
                grantInvoke[LeaseID(unit: unit, fence: fence)] = operation.invoke
            }
        }
        return History(
            units: units, perUserLimit: perUserLimit,
            operations: operations.map { operation in
                guard case .expired = operation.result, let lease = operation.result.lease else { return operation }
                return Operation(
                    id: operation.id, shopper: operation.shopper,
                    invoke: grantInvoke[lease].map { min($0 + life, operation.invoke) } ?? operation.invoke,
                    response: nil, result: operation.result)
            }, holdTTL: holdTTL)
    }
}

/// One operation as the client saw it: a claim, a confirm, a release, or a lease's expiry.
public struct Operation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What the claim answered.
    public enum Result: Sendable, Hashable, Codable {
        /// A unit under a fence.
        case held(unit: Int, fence: Int64)
        /// No unit: sold out, or waitlisted (which also says no unit was free).
        case soldOut
        /// The shopper was at the limit.
        case limitReached
        /// No answer (timeout, reset): it may or may not have taken effect.
        case unknown
        /// A confirm of the lease (unit, fence) that answered with a sale. Confirms that were
        /// refused or not answered sold nothing the checker can rely on: leave them out.
        case confirmed(unit: Int, fence: Int64)
        /// A release that ended the lease (unit, fence).
        case released(unit: Int, fence: Int64)
        /// The lease (unit, fence) expiring: not a request but the store's own step, somewhere
        /// in [invoke, response] (its expiry mapped onto the client clock with its uncertainty;
        /// no response: any time after invoke). It ends the lease if the lease is still held
        /// then, and does nothing if it was confirmed or released first.
        case expired(unit: Int, fence: Int64)

        /// A claim's answer (held, sold out, limit, unknown), not a step on a lease.
        public var isClaim: Bool {
            switch self {
            case .held, .soldOut, .limitReached, .unknown: true
            case .confirmed, .released, .expired: false
            }
        }

        /// A release or an expiry: what gives a unit back.
        public var endsLease: Bool {
            switch self {
            case .released, .expired: true
            default: false
            }
        }

        /// The lease a confirm, release or expiry acts on.
        public var lease: LeaseID? {
            switch self {
            case .confirmed(let unit, let fence), .released(let unit, let fence), .expired(let unit, let fence):
                LeaseID(unit: unit, fence: fence)
            case .held, .soldOut, .limitReached, .unknown: nil
            }
        }
    }

    /// The operation's number in the history, used to name witnesses.
    public let id: Int
    public let shopper: String
    /// When the request was sent.
    public let invoke: Int64
    /// When the answer came; `nil` for no answer (for an expiry: no upper bound).
    public let response: Int64?
    public let result: Result

    /// Makes an operation.
    public init(id: Int, shopper: String, invoke: Int64, response: Int64?, result: Result) {
        self.id = id
        self.shopper = shopper
        self.invoke = invoke
        self.response = response
        self.result = response == nil && result.isClaim ? .unknown : result
    }

    public var description: String {
        let answer: String
        switch result {
        case .held(let unit, let fence): answer = "held unit \(unit) fence \(fence)"
        case .soldOut: answer = "sold out"
        case .limitReached: answer = "limit reached"
        case .unknown: answer = "no answer"
        case .confirmed(let unit, let fence): answer = "confirmed unit \(unit) fence \(fence)"
        case .released(let unit, let fence): answer = "released unit \(unit) fence \(fence)"
        case .expired(let unit, let fence): answer = "expiry of unit \(unit) fence \(fence)"
        }
        return "#\(id) \(shopper) [\(invoke), \(response.map(String.init) ?? "∞")] \(answer)"
    }
}

/// A lease: its unit and the fence it was handed out with.
public struct LeaseID: Sendable, Hashable {
    public let unit: Int
    public let fence: Int64

    public init(unit: Int, fence: Int64) {
        self.unit = unit
        self.fence = fence
    }
}
