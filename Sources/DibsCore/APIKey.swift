private import Crypto

/// What an API key may do.
public enum APIScope: String, Sendable, Hashable, CaseIterable {
    /// Claims, their status, confirms and releases: what a storefront backend calls.
    case storefront
    /// Everything a storefront may, and the drops themselves (`/v1/admin/…`).
    case `operator`

    /// Whether a key of this scope may call an endpoint that needs `required`.
    public func allows(_ required: APIScope) -> Bool { self == .operator || required == .storefront }
}

/// An API key as a client sends it: `dibs_<id>_<secret>`. The id (12 hex digits) finds the
/// stored record; the secret (256 bits from the CSPRNG) is stored only salted and hashed.
public struct APIKey: Sendable, Hashable {
    public let id: String
    public let secret: String

    /// Draws a new key.
    public static func generate() -> APIKey {
        APIKey(id: Hex.encode(randomBytes(6)), secret: Hex.encode(randomBytes(32)))
    }

    private init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }

    /// Parses a key as sent in `Authorization: Bearer …`; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "dibs", parts[1].utf8.count == 12, parts[2].utf8.count == 64,
            Hex.decode(String(parts[1])) != nil, Hex.decode(String(parts[2])) != nil
        else { return nil }
        self.init(id: String(parts[1]), secret: String(parts[2]))
    }

    /// The key as the client sends it (shown once, when it is made).
    public var text: String { "dibs_\(id)_\(secret)" }

    /// The record to store for this key: a fresh salt and the hash of salt and secret.
    public func record(name: String, scope: APIScope, createdAt: Timestamp) -> APIKeyRecord {
        let salt = Self.randomBytes(16)
        return APIKeyRecord(
            id: id, name: name, scope: scope, salt: salt, hash: Self.hash(salt: salt, secret: secret),
            createdAt: createdAt, revokedAt: nil)
    }

    /// Whether this key is the one `record` was made for (compared in constant time).
    public func matches(_ record: APIKeyRecord) -> Bool {
        guard record.id == id else { return false }
        let candidate = Self.hash(salt: record.salt, secret: secret)
        guard candidate.count == record.hash.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(candidate, record.hash) { difference |= a ^ b }
        return difference == 0
    }

    static func hash(salt: [UInt8], secret: String) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: salt)
        hasher.update(data: Array(secret.utf8))
        return Array(hasher.finalize())
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// A stored API key: never the secret, only its salt and hash.
public struct APIKeyRecord: Sendable, Hashable {
    public let id: String
    /// Who the key is for, for people reading the list.
    public let name: String
    public let scope: APIScope
    public let salt: [UInt8]
    public let hash: [UInt8]
    public let createdAt: Timestamp
    /// When the key was revoked; a revoked key authenticates nothing.
    public let revokedAt: Timestamp?

    /// Makes a record (as read back from a store).
    public init(
        id: String, name: String, scope: APIScope, salt: [UInt8], hash: [UInt8], createdAt: Timestamp,
        revokedAt: Timestamp?
    ) {
        self.id = id
        self.name = name
        self.scope = scope
        self.salt = salt
        self.hash = hash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// Where API keys are kept (Postgres's `dibs_api_keys`, or memory for a try-out server).
public protocol APIKeyStore: Sendable {
    /// Stores a new key's record.
    func insert(_ record: APIKeyRecord) async throws
    /// The record with this id, revoked or not.
    func find(id: String) async throws -> APIKeyRecord?
    /// Revokes a key; `false` when no key has this id.
    func revoke(id: String, at time: Timestamp) async throws -> Bool
    /// Every key, newest first.
    func list() async throws -> [APIKeyRecord]
}
