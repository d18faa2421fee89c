/// A recorded claim history of one drop: what `dibs-load` records, what the checker reads.
/// Times are nanoseconds on the client's one monotonic clock.
public struct History: Sendable {
    /// The drop's units and per-user limit.
    public var units: Int
    public var perUserLimit: Int
    public var operations: [Operation]

    /// Makes a history.
    public init(units: Int, perUserLimit: Int, operations: [Operation]) {
        self.units = units
        self.perUserLimit = perUserLimit
        self.operations = operations
    }
}

/// One claim as the client saw it.
public struct Operation: Sendable, Hashable, CustomStringConvertible {
    /// What the claim answered.
    public enum Result: Sendable, Hashable {
        /// A unit under a fence.
        case held(unit: Int, fence: Int64)
        /// No unit: sold out, or waitlisted (which also says no unit was free).
        case soldOut
        /// The shopper was at the limit.
        case limitReached
        /// No answer (timeout, reset): it may or may not have taken effect.
        case unknown
        /// A confirm of the lease (unit, fence) that answered with a sale. Confirms that were
        /// refused or not answered sold nothing the checker can rely on: leave them out (an
        /// operation without a response counts as an unanswered claim).
        case confirmed(unit: Int, fence: Int64)
    }

    /// The operation's number in the history, used to name witnesses.
    public let id: Int
    public let shopper: String
    /// When the request was sent.
    public let invoke: Int64
    /// When the answer came; `nil` for no answer.
    public let response: Int64?
    public let result: Result

    /// Makes an operation.
    public init(id: Int, shopper: String, invoke: Int64, response: Int64?, result: Result) {
        self.id = id
        self.shopper = shopper
        self.invoke = invoke
        self.response = response
        self.result = response == nil ? .unknown : result
    }

    public var description: String {
        let answer: String
        switch result {
        case .held(let unit, let fence): answer = "held unit \(unit) fence \(fence)"
        case .soldOut: answer = "sold out"
        case .limitReached: answer = "limit reached"
        case .unknown: answer = "no answer"
        case .confirmed(let unit, let fence): answer = "confirmed unit \(unit) fence \(fence)"
        }
        return "#\(id) \(shopper) [\(invoke), \(response.map(String.init) ?? "∞")] \(answer)"
    }
}
