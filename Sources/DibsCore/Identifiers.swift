/// The identifiers of the domain, each validated where it enters the system so that the
/// stores never see an empty, over-long or malformed id.

/// A drop's id: a short slug, `[a-z0-9-]{1,64}`, safe inside Redis keys and URLs.
public struct DropID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The slug itself.
    public let rawValue: String

    /// Validates `rawValue` as a slug.
    public init(_ rawValue: String) throws(DibsError) {
        guard (1...64).contains(rawValue.utf8.count),
            rawValue.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D })
        else {
            throw DibsError(
                .invalidInput, "a drop id is 1 to 64 characters of a-z, 0-9 and '-', got \"\(rawValue.prefix(80))\"")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
    public static func < (lhs: DropID, rhs: DropID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The storefront's id of a shopper: 1 to 128 printable characters.
public struct UserID: Hashable, Sendable, CustomStringConvertible {
    /// The id as the storefront sent it.
    public let rawValue: String

    /// Validates `rawValue`: 1 to 128 characters (Unicode scalars, as JSON Schema counts),
    /// no control characters.
    public init(_ rawValue: String) throws(DibsError) {
        // ASCII (the common case) is checked byte by byte; other text by its scalars' category.
        let ascii = rawValue.utf8.allSatisfy { $0 < 0x80 }
        guard (1...128).contains(ascii ? rawValue.utf8.count : rawValue.unicodeScalars.count),
            ascii
                ? rawValue.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F })
                : !rawValue.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw DibsError(.invalidInput, "a user id is 1 to 128 characters without control characters")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// The storefront's `Idempotency-Key`: 1 to 255 bytes of visible ASCII.
public struct IdempotencyKey: Hashable, Sendable, CustomStringConvertible {
    /// The key as sent.
    public let rawValue: String

    /// Validates `rawValue`: visible ASCII (0x21…0x7E), 1 to 255 bytes.
    public init(_ rawValue: String) throws(DibsError) {
        guard (1...255).contains(rawValue.utf8.count), rawValue.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw DibsError(.invalidInput, "an Idempotency-Key is 1 to 255 characters of visible ASCII")
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }
}

/// A claim's id: the drop it belongs to and its number within the drop, written
/// `drop.number`. Carrying the drop lets every store find the claim's drop (and, on Redis,
/// its hash slot) without a lookup.
public struct ClaimID: Hashable, Sendable, CustomStringConvertible {
    /// The drop the claim was made on.
    public let drop: DropID
    /// The claim's number within its drop, from 1.
    public let number: Int64

    /// Makes an id from its parts.
    public init(drop: DropID, number: Int64) {
        self.drop = drop
        self.number = number
    }

    /// Parses `drop.number`.
    public init(_ text: String) throws(DibsError) {
        guard let dot = text.lastIndex(of: "."), let number = Int64(text[text.index(after: dot)...]), number > 0 else {
            throw DibsError(.invalidInput, "a claim id looks like \"drop-id.42\"")
        }
        self.drop = try DropID(String(text[..<dot]))
        self.number = number
    }

    public var description: String { "\(drop.rawValue).\(number)" }
}

/// The fencing token of a lease: strictly increasing per drop, so a holder whose lease was
/// replaced can be told apart from the current one.
public struct Fence: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The number; 0 is never handed out.
    public let value: Int64

    /// Wraps a fence number.
    public init(_ value: Int64) { self.value = value }

    public var description: String { String(value) }
    public static func < (lhs: Fence, rhs: Fence) -> Bool { lhs.value < rhs.value }
}
