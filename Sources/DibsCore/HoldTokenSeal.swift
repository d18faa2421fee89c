private import Crypto

/// Keeps hold tokens secret wherever what a replay needs of them is kept outside the process:
/// the token kept with a claim in Redis, and a claim's answer kept for its Idempotency-Key.
///
/// A token is stored only as its hash (DESIGN.md), yet the same Idempotency-Key must get the
/// same answer, token and all (invariant 6). So what is kept is hidden under a key only the
/// service holds, and whoever reads Redis or Postgres learns nothing they could confirm a
/// hold with:
/// - a token kept with its claim is *masked*: XORed with a pad, the first 16 bytes of SHA-256
///   over the key and the claim's drop and Idempotency-Key. A key names one claim of a drop,
///   so each pad hides one stored token; a retry's own (unused, never shown) token goes to
///   Redis under the same pad but is not kept. Half the digest stays hidden, so it cannot be
///   extended to another claim's pad. 32 hex digits, as the token was: this is on the claim
///   path, where sealing the token (below) cost a claim 3 µs of `dibs serve`'s CPU and HMAC
///   1.5 µs. The token's hash tells a token unmasked under another key.
/// - an answer kept whole is *sealed* with ChaCha20-Poly1305, bound to its context.
public struct HoldTokenSeal: Sendable {
    /// The 32 key bytes.
    private let key: [UInt8]

    /// A seal with a 32-byte key.
    public init(key: [UInt8]) throws(DibsError) {
        guard key.count == 32 else { throw DibsError(.invalidInput, "a hold-token key is 32 bytes (64 hex digits)") }
        self.key = key
    }

    /// A seal with a key of 64 hex digits (`openssl rand -hex 32`).
    public init(hex: String) throws(DibsError) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else {
            throw DibsError(.invalidInput, "a hold-token key is 64 hex digits (openssl rand -hex 32)")
        }
        try self.init(key: bytes)
    }

    /// A seal with a key made now, for this process only: what it hid shows nowhere else.
    public static func random() -> HoldTokenSeal {
        try! HoldTokenSeal(key: KernelRandom.bytes(32))
    }

    /// A claim's token masked, as 32 hex digits: what the Redis store keeps with the claim.
    public func mask(_ token: HoldToken, drop: DropID, key idempotencyKey: IdempotencyKey) -> String {
        Hex.encode(Self.xor(token.bytes, pad(drop, idempotencyKey)))
    }

    /// The token `mask` hid for this claim, if it has the claim's token `hash`: nil when it
    /// was masked under another key (or for another claim), which would unmask to a wrong token.
    public func unmask(
        _ hex: String, hash: HoldTokenHash, drop: DropID, key idempotencyKey: IdempotencyKey
    ) -> HoldToken? {
        guard let masked = Hex.decode(hex), masked.count == 16,
            let token = HoldToken(bytes: Self.xor(masked, pad(drop, idempotencyKey))), hash.matches(token)
        else { return nil }
        return token
    }

    /// `plaintext` sealed: a fresh 12-byte nonce, the ciphertext and the 16-byte tag.
    public func seal(_ plaintext: [UInt8], context: [UInt8]) -> [UInt8] {
        do {
            let nonce = try ChaChaPoly.Nonce(data: KernelRandom.bytes(12))
            return Array(
                try ChaChaPoly.seal(plaintext, using: SymmetricKey(data: key), nonce: nonce, authenticating: context)
                    .combined)
        } catch {
            // Only a nonce of the wrong size throws, and this one has 12 bytes.
            preconditionFailure("ChaCha20-Poly1305 refused to seal: \(error)")
        }
    }

    /// What `seal` sealed with this key and `context`; nil when it was sealed with another
    /// key or context, or changed since.
    public func open(_ sealed: [UInt8], context: [UInt8]) -> [UInt8]? {
        guard let box = try? ChaChaPoly.SealedBox(combined: sealed),
            let plaintext = try? ChaChaPoly.open(box, using: SymmetricKey(data: key), authenticating: context)
        else { return nil }
        return Array(plaintext)
    }

    private func pad(_ drop: DropID, _ idempotencyKey: IdempotencyKey) -> [UInt8] {
        // Bytes appended in place: on the claim path, an interpolated String cost as much as the hash.
        var input = [UInt8]()
        input.reserveCapacity(key.count + 12 + drop.rawValue.utf8.count + idempotencyKey.rawValue.utf8.count)
        input += key
        input += "hold-token\u{0}".utf8
        input += drop.rawValue.utf8
        input.append(0)
        input += idempotencyKey.rawValue.utf8
        return Array(SHA256.hash(data: input).prefix(16))
    }

    private static func xor(_ a: [UInt8], _ b: [UInt8]) -> [UInt8] {
        zip(a, b).map { $0 ^ $1 }
    }
}
