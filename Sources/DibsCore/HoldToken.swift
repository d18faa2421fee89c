private import Crypto

/// The secret a claim's storefront needs to confirm or release it: 128 bits from the
/// system CSPRNG, shown once and stored only as its SHA-256 hash.
///
/// A full-entropy token needs no salt: nobody can precompute 2^128 hashes.
public struct HoldToken: Hashable, Sendable, CustomStringConvertible {
    /// The 16 random bytes.
    public let bytes: [UInt8]

    /// Draws a new token from the kernel's cryptographically secure generator.
    public static func random() -> HoldToken {
        HoldToken(bytes: KernelRandom.bytes(16))!
    }

    /// The token of 16 bytes, or nil.
    init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// Parses the 32 lowercase or uppercase hex digits of a token.
    public init(_ text: String) throws(DibsError) {
        guard let token = Hex.decode(text).flatMap(HoldToken.init(bytes:)) else {
            throw DibsError(.invalidInput, "a hold token is 32 hex digits")
        }
        self = token
    }

    /// The token as 32 lowercase hex digits.
    public var description: String { Hex.encode(bytes) }

    /// The hash the stores keep instead of the token.
    public var hash: HoldTokenHash { HoldTokenHash(bytes: Array(SHA256.hash(data: bytes))) }
}

/// The SHA-256 of a hold token: what a store keeps.
public struct HoldTokenHash: Hashable, Sendable, CustomStringConvertible {
    /// The 32 bytes of the digest.
    public let bytes: [UInt8]

    /// Wraps a stored digest.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses 64 hex digits.
    public init(hex: String) throws(DibsError) {
        guard let bytes = Hex.decode(hex), bytes.count == 32 else {
            throw DibsError(.internalError, "a stored token hash is 64 hex digits")
        }
        self.bytes = bytes
    }

    /// Whether `token` hashes to this digest, compared in constant time so the comparison
    /// leaks nothing of how many bytes matched.
    public func matches(_ token: HoldToken) -> Bool {
        let candidate = token.hash.bytes
        guard candidate.count == bytes.count else { return false }
        var difference: UInt8 = 0
        for index in bytes.indices { difference |= bytes[index] ^ candidate[index] }
        return difference == 0
    }

    /// The digest as 64 lowercase hex digits.
    public var description: String { Hex.encode(bytes) }
}

/// Lowercase hex, without Foundation: tokens, their hashes, migration checksums and the
/// SHA-1 names of Redis scripts.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// The bytes as lowercase hex digits.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of an even number of hex digits (either case), or nil.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
