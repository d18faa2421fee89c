/// The one error type of Dibs: a stable code to switch on and a message for people.
///
/// A struct with a nested `Code` (as PostgresNIO's `PSQLError`), so adding a code never
/// breaks a caller's exhaustive switch.
public struct DibsError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, as a stable, machine-readable value.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name (used in problem `type` URIs and logs).
        public let name: String
        private init(_ name: String) { self.name = name }

        /// Input that can never be valid: a malformed id, an out-of-range setting.
        public static let invalidInput = Code("invalid-input")
        /// No drop has this id.
        public static let unknownDrop = Code("unknown-drop")
        /// A drop with this id exists already.
        public static let dropExists = Code("drop-exists")
        /// No claim has this id.
        public static let unknownClaim = Code("unknown-claim")
        /// The Idempotency-Key was used before with a different request.
        public static let idempotencyKeyReused = Code("idempotency-key-reused")
        /// The hold token does not belong to the claim.
        public static let invalidHoldToken = Code("invalid-hold-token")
        /// The fence is not the fence of the claim's current lease.
        public static let staleFence = Code("stale-fence")
        /// The lease ran out before the request arrived; it can never become a sale.
        public static let leaseExpired = Code("lease-expired")
        /// The claim is in a state that does not allow the operation (released, lapsed, …).
        public static let notHeld = Code("not-held")
        /// The unit was sold under another lease: the sale ledger refused a second sale.
        public static let unitAlreadySold = Code("unit-already-sold")
        /// A backing server (Redis, Postgres) did not answer or refused to.
        public static let storeUnavailable = Code("store-unavailable")
        /// A backing server did not answer in time; the outcome of the call is unknown.
        public static let timeout = Code("timeout")
        /// A state the code does not expect: a bug or a corrupted store.
        public static let internalError = Code("internal-error")

        public var description: String { name }
    }

    /// The stable code.
    public let code: Code
    /// A sentence for people: what was wrong and, where possible, how to fix it.
    public let message: String

    /// Makes an error with its code and message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
