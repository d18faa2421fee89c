/// A code meant for people (an order or voucher code): Crockford base32 with its check
/// symbol, so a mistyped code is caught before it is looked up.
///
/// Decoding forgives what people do: lower case, `O` for `0`, `I`/`L` for `1`, and hyphens.
/// The check symbol is the value modulo 37, written with Crockford's 37-symbol alphabet.
public struct HumanCode: Hashable, Sendable, CustomStringConvertible {
    private static let symbols = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U".utf8)

    /// The code's symbols without the check symbol, upper case, no hyphens.
    public let body: String
    /// The check symbol.
    public let check: Character

    /// A fresh random code of `length` symbols (5 bits each) plus the check symbol.
    public static func random(length: Int = 10) -> HumanCode {
        var generator = SystemRandomNumberGenerator()
        let digits = (0..<max(1, length)).map { _ in UInt8(generator.next(upperBound: UInt8(32))) }
        return HumanCode(digits: digits)
    }

    private init(digits: [UInt8]) {
        body = String(decoding: digits.map { Self.symbols[Int($0)] }, as: UTF8.self)
        check = Character(Unicode.Scalar(Self.symbols[Int(Self.checkValue(of: digits))]))
    }

    /// Parses a code as a person typed it; throws `.invalidInput` for a symbol outside the
    /// alphabet or a check symbol that does not match (a typo).
    public init(_ text: String) throws(DibsError) {
        var values = [UInt8]()
        for byte in text.utf8 where byte != UInt8(ascii: "-") {
            guard let value = Self.value(of: byte) else {
                throw DibsError(.invalidInput, "\"\(text.prefix(40))\" is not a Crockford base32 code")
            }
            values.append(value)
        }
        guard values.count >= 2, let checkValue = values.popLast(), values.allSatisfy({ $0 < 32 }) else {
            throw DibsError(.invalidInput, "\"\(text.prefix(40))\" is too short or misplaces its check symbol")
        }
        guard Self.checkValue(of: values) == checkValue else {
            throw DibsError(.invalidInput, "\"\(text.prefix(40))\" has a typo: its check symbol does not match")
        }
        self.init(digits: values)
    }

    /// The code as it is shown: body then check symbol.
    public var description: String { body + String(check) }

    /// The value of the digits (base 32, most significant first) modulo 37, by Horner's rule
    /// so codes of any length work.
    private static func checkValue(of digits: [UInt8]) -> UInt8 {
        var remainder = 0
        for digit in digits { remainder = (remainder * 32 + Int(digit)) % 37 }
        return UInt8(remainder)
    }

    private static func value(of byte: UInt8) -> UInt8? {
        var upper = byte
        if upper >= 0x61 && upper <= 0x7A { upper -= 0x20 }
        switch upper {
        case UInt8(ascii: "O"): return 0
        case UInt8(ascii: "I"), UInt8(ascii: "L"): return 1
        default: return symbols.firstIndex(of: upper).map { UInt8($0) }
        }
    }
}
