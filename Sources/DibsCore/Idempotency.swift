/// The answer kept for an Idempotency-Key: replayed byte for byte to a retry.
public struct IdempotencyRecord: Sendable, Hashable {
    /// The hash of the request the key was first used with (method, path and body).
    public let fingerprint: [UInt8]
    /// The HTTP status of the answer.
    public let status: Int
    /// The answer's body.
    public let body: [UInt8]

    /// Makes a record.
    public init(fingerprint: [UInt8], status: Int, body: [UInt8]) {
        self.fingerprint = fingerprint
        self.status = status
        self.body = body
    }
}

/// What `IdempotencyStore.begin` found for a key.
public enum IdempotencyStart: Sendable, Hashable {
    /// The key is new: the caller goes on and later completes or abandons it.
    case started
    /// A request with this key and the same fingerprint is still being answered.
    case inFlight
    /// The key was used with a different request.
    case mismatch
    /// The key was answered already: replay this.
    case completed(IdempotencyRecord)
}

/// Where Idempotency-Keys and their answers are kept (Redis, Postgres, or memory).
///
/// `begin` marks a key in flight atomically, so two requests with one key never both go on.
/// The mark ends by itself after `pendingFor` (a process that died mid-request does not
/// block the key for good); a completed answer is kept for `keepFor`.
public protocol IdempotencyStore: Sendable {
    func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) async throws -> IdempotencyStart
    /// What `begin` would find, without marking anything; `nil` when the key is new.
    func peek(key: String, fingerprint: [UInt8]) async throws -> IdempotencyStart?
    func complete(key: String, record: IdempotencyRecord, keepFor: Duration) async throws
    /// Forgets an in-flight key whose request failed without an answer worth keeping.
    func abandon(key: String) async throws
}
