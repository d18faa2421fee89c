public import DibsCore

/// An `application/problem+json` answer (RFC 9457). `type` is stable: a client switches on
/// it, never on `detail`, which is for people.
public struct Problem: Error, Sendable, Equatable {
    public let kind: ProblemKind
    public let detail: String
    /// For `429` (and `503`): when to try again, sent as `Retry-After` in whole seconds.
    public let retryAfter: Duration?

    public init(_ kind: ProblemKind, _ detail: String, retryAfter: Duration? = nil) {
        self.kind = kind
        self.detail = detail
        self.retryAfter = retryAfter
    }

    /// The problem for a store's error: each `DibsError.Code` has one kind.
    public init(_ error: DibsError) {
        self.init(ProblemKind(code: error.code), error.message, retryAfter: nil)
    }

    var body: [UInt8] {
        var json = JSONWriter()
        json.field("type", kind.type)
        json.field("title", kind.title)
        json.field("status", kind.status)
        json.field("detail", detail)
        return json.finish()
    }
}

/// Every kind of problem Dibs answers, with its status and stable `type` URI.
public struct ProblemKind: Sendable, Hashable, CustomStringConvertible {
    /// The last part of the `type` URI, as in `urn:dibs:problem:sold-out`.
    public let name: String
    public let status: Int
    public let title: String

    private init(_ name: String, _ status: Int, _ title: String) {
        self.name = name
        self.status = status
        self.title = title
    }

    public var type: String { "urn:dibs:problem:\(name)" }
    public var description: String { name }

    // Requests the server could not read.
    public static let malformedRequest = ProblemKind("malformed-request", 400, "The request is not valid HTTP/1.1")
    public static let headersTooLarge = ProblemKind("headers-too-large", 431, "The request's headers are too large")
    public static let malformedJSON = ProblemKind("malformed-json", 400, "The body is not valid JSON")
    public static let unknownField = ProblemKind(
        "unknown-field", 400, "The body has a field this endpoint does not take")
    public static let invalidField = ProblemKind(
        "invalid-field", 400, "A field is missing, of the wrong type or too long")
    public static let invalidInput = ProblemKind("invalid-input", 400, "A value is out of range or malformed")
    public static let invalidHeader = ProblemKind("invalid-header", 400, "A header is malformed")
    public static let missingIdempotencyKey = ProblemKind(
        "missing-idempotency-key", 400, "This request needs an Idempotency-Key header")
    public static let unsupportedMediaType = ProblemKind(
        "unsupported-media-type", 415, "The body must be application/json")
    public static let payloadTooLarge = ProblemKind("payload-too-large", 413, "The body is too large")
    public static let notFound = ProblemKind("not-found", 404, "No such endpoint")
    public static let methodNotAllowed = ProblemKind(
        "method-not-allowed", 405, "The endpoint does not take this method")

    // Who may call.
    public static let unauthorized = ProblemKind("unauthorized", 401, "A valid API key is needed")
    public static let insufficientScope = ProblemKind(
        "insufficient-scope", 403, "The API key's scope does not allow this")
    public static let rateLimited = ProblemKind("rate-limited", 429, "Too many requests")

    // Idempotency.
    public static let idempotencyInFlight = ProblemKind(
        "idempotency-in-flight", 409, "A request with this Idempotency-Key is still being answered")
    public static let idempotencyKeyReused = ProblemKind(
        "idempotency-key-reused", 422, "The Idempotency-Key was used with a different request")

    // Claims.
    public static let soldOut = ProblemKind("sold-out", 409, "Sold out")
    public static let limitReached = ProblemKind("limit-reached", 403, "The shopper has reached the per-user limit")
    public static let dropNotOpen = ProblemKind("drop-not-open", 409, "The drop does not take claims yet")
    public static let dropClosed = ProblemKind("drop-closed", 409, "The drop no longer takes claims")
    public static let dropCancelled = ProblemKind("drop-cancelled", 409, "The drop was cancelled")

    // Store answers (one per DibsError.Code).
    public static let unknownDrop = ProblemKind("unknown-drop", 404, "No such drop")
    public static let dropExists = ProblemKind("drop-exists", 409, "A drop with this id exists already")
    public static let unknownClaim = ProblemKind("unknown-claim", 404, "No such claim")
    public static let invalidHoldToken = ProblemKind("invalid-hold-token", 403, "The hold token is not this claim's")
    public static let staleFence = ProblemKind("stale-fence", 409, "The fence is not the current lease's")
    public static let leaseExpired = ProblemKind("lease-expired", 409, "The lease ran out")
    public static let notHeld = ProblemKind("not-held", 409, "The claim holds no unit")
    public static let unitAlreadySold = ProblemKind("unit-already-sold", 409, "The unit was sold under another lease")
    public static let storeUnavailable = ProblemKind("store-unavailable", 503, "A backing store is unavailable")
    public static let timeout = ProblemKind("timeout", 504, "A backing store did not answer in time")
    public static let internalError = ProblemKind("internal-error", 500, "Internal error")

    /// Every kind, for the OpenAPI drift test and the documentation.
    public static let all: [ProblemKind] = [
        .malformedRequest, .headersTooLarge, .malformedJSON, .unknownField, .invalidField, .invalidInput,
        .invalidHeader, .missingIdempotencyKey,
        .unsupportedMediaType, .payloadTooLarge, .notFound, .methodNotAllowed, .unauthorized, .insufficientScope,
        .rateLimited, .idempotencyInFlight, .idempotencyKeyReused, .soldOut, .limitReached, .dropNotOpen, .dropClosed,
        .dropCancelled, .unknownDrop, .dropExists, .unknownClaim, .invalidHoldToken, .staleFence, .leaseExpired,
        .notHeld, .unitAlreadySold, .storeUnavailable, .timeout, .internalError,
    ]

    init(code: DibsError.Code) {
        switch code {
        case .invalidInput: self = .invalidInput
        case .unknownDrop: self = .unknownDrop
        case .dropExists: self = .dropExists
        case .unknownClaim: self = .unknownClaim
        case .idempotencyKeyReused: self = .idempotencyKeyReused
        case .invalidHoldToken: self = .invalidHoldToken
        case .staleFence: self = .staleFence
        case .leaseExpired: self = .leaseExpired
        case .notHeld: self = .notHeld
        case .unitAlreadySold: self = .unitAlreadySold
        case .storeUnavailable: self = .storeUnavailable
        case .timeout: self = .timeout
        default: self = .internalError
        }
    }

    init(rejection: ClaimRejection) {
        switch rejection {
        case .soldOut: self = .soldOut
        case .limitReached: self = .limitReached
        case .notOpen: self = .dropNotOpen
        case .closed: self = .dropClosed
        }
    }

    init(body: BodyError) {
        switch body.kind {
        case .malformed: self = .malformedJSON
        case .unknownField: self = .unknownField
        case .invalidField: self = .invalidField
        }
    }
}
