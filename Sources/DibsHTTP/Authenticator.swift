import DibsCore
import Synchronization

/// Who is calling: the API key's record, checked against its salted hash.
struct Caller: Sendable {
    let keyID: String
    let scope: APIScope
}

/// Checks `Authorization: Bearer dibs_…` against the key store, keeping looked-up records
/// for `cacheFor` so the hot path does not read the store per request (a revocation takes
/// effect within that time, plus one read of the store).
final class Authenticator: Sendable {
    private let keys: any APIKeyStore
    private let clock: any DibsClock
    private let cacheFor: Duration
    /// Records by key id; unknown ids are remembered too, so guessing keys does not hammer
    /// the store.
    private let records: RefreshingCache<String, APIKeyRecord?>
    /// Headers already checked against their record, so the hot path skips the parse and
    /// the hash; trusted for `cacheFor`, as the records are.
    private let verified = Mutex<[String: (caller: Caller, readAt: Timestamp)]>([:])

    init(keys: any APIKeyStore, clock: any DibsClock, cacheFor: Duration) {
        self.keys = keys
        self.clock = clock
        self.cacheFor = cacheFor
        self.records = RefreshingCache(clock: clock, freshFor: cacheFor)
    }

    /// The caller of a header checked within `cacheFor` whose scope allows `scope`; nil when
    /// only `authenticate` can tell (it may need the store, or it has an error to give).
    func knownCaller(_ authorization: String?, needs scope: APIScope) -> Caller? {
        guard let authorization, let caller = verifiedCaller(authorization), caller.scope.allows(scope) else {
            return nil
        }
        return caller
    }

    /// The caller of a header checked against its record within `cacheFor`, whatever its scope.
    private func verifiedCaller(_ authorization: String) -> Caller? {
        let now = clock.now()
        guard let known = verified.withLock({ $0[authorization] }), now < known.readAt.adding(cacheFor) else {
            return nil
        }
        return known.caller
    }

    /// Whether the header starts with the `Bearer` scheme, whose name is case-insensitive
    /// (RFC 9110, 11.1): `bearer dibs_…` is the same credential.
    static func isBearer(_ authorization: String) -> Bool {
        let scheme = authorization.utf8.prefix(7)
        return scheme.count == 7 && scheme.last == UInt8(ascii: " ")
            && zip(scheme.dropLast(), "bearer".utf8).allSatisfy { $0 | 0x20 == $1 }
    }

    func authenticate(_ authorization: String?, needs scope: APIScope) async throws -> Caller {
        guard let authorization else {
            throw Problem(.unauthorized, "send the API key as \"Authorization: Bearer dibs_…\"")
        }
        if let known = verifiedCaller(authorization) {
            guard known.scope.allows(scope) else {
                throw Problem(.insufficientScope, "this endpoint needs a key of scope \(scope.rawValue)")
            }
            return known
        }
        guard authorization.utf8.count < 200, Self.isBearer(authorization),
            let key = APIKey(
                authorization.utf8.dropFirst(7).split(separator: UInt8(ascii: " ")).first.map {
                    String(decoding: $0, as: UTF8.self)
                } ?? "")
        else { throw Problem(.unauthorized, "the Authorization header does not carry a Dibs API key") }
        let (found, readAt) = try await records.value(key.id) { try await self.keys.find(id: key.id) }
        guard let record = found, record.revokedAt == nil, key.matches(record) else {
            throw Problem(.unauthorized, "the API key is unknown or revoked")
        }
        let caller = Caller(keyID: record.id, scope: record.scope)
        // Trusted as long as the record it was checked against: a stale record served while
        // another request reads it again does not make the header fresh.
        verified.withLock { verified in
            if verified.count > 10_000 { verified.removeAll() }
            verified[authorization] = (caller, readAt)
        }
        guard record.scope.allows(scope) else {
            throw Problem(.insufficientScope, "this endpoint needs a key of scope \(scope.rawValue)")
        }
        return caller
    }
}
