/// A value of a request body's top-level field. Dibs's request bodies are flat objects, so
/// nested objects and arrays are refused rather than parsed.
enum JSONScalar: Sendable, Equatable {
    case string(String)
    case number(Double, isInteger: Bool)
    case bool(Bool)
    case null

    var typeName: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// Why a body was refused: one sentence for the problem's `detail`, and whether it was
/// the JSON itself (`malformed-json`) or a field (`invalid-field`/`unknown-field`).
struct BodyError: Error, Equatable {
    enum Kind: Equatable { case malformed, unknownField, invalidField }
    let kind: Kind
    let detail: String
}

/// A request body's fields, read strictly: every field must be known to the endpoint, of
/// the right type, and within its length; `finish()` refuses the ones nobody read.
struct JSONFields {
    private var values: [String: JSONScalar]
    private var read: Set<String> = []

    /// Parses a body that must be one JSON object of scalars. No body at all is `{}`.
    init(parsing bytes: some Collection<UInt8>) throws(BodyError) {
        var parser = FlatJSONParser(Array(bytes))
        values = try parser.parseObject()
    }

    init(_ values: [String: JSONScalar]) { self.values = values }

    mutating func string(_ name: String, maxLength: Int = 256) throws(BodyError) -> String? {
        guard let value = take(name) else { return nil }
        guard case .string(let text) = value else {
            throw BodyError(kind: .invalidField, detail: "\"\(name)\" must be a string, not \(value.typeName)")
        }
        guard text.utf8.count <= maxLength else {
            throw BodyError(kind: .invalidField, detail: "\"\(name)\" is longer than \(maxLength) bytes")
        }
        return text
    }

    mutating func requiredString(_ name: String, maxLength: Int = 256) throws(BodyError) -> String {
        guard let text = try string(name, maxLength: maxLength) else {
            throw BodyError(kind: .invalidField, detail: "\"\(name)\" is required")
        }
        return text
    }

    mutating func integer(_ name: String, in range: ClosedRange<Int64>) throws(BodyError) -> Int64? {
        guard let value = take(name) else { return nil }
        guard case .number(let number, let isInteger) = value else {
            throw BodyError(kind: .invalidField, detail: "\"\(name)\" must be a whole number, not \(value.typeName)")
        }
        guard number.rounded() == number else {
            throw BodyError(kind: .invalidField, detail: "\"\(name)\" must be a whole number, not \(number)")
        }
        // A whole number past 2^53 is not read exactly, so the range ends there at most.
        guard isInteger, let integer = Int64(exactly: number), range.contains(integer) else {
            let got = Int64(exactly: number).map(String.init) ?? "\(number)"
            let upper = min(range.upperBound, 9_007_199_254_740_992)
            throw BodyError(
                kind: .invalidField, detail: "\"\(name)\" must be between \(range.lowerBound) and \(upper), got \(got)")
        }
        return integer
    }

    /// Refuses every field the endpoint did not read.
    func finish() throws(BodyError) {
        if let unknown = values.keys.filter({ !read.contains($0) }).sorted().first {
            throw BodyError(kind: .unknownField, detail: "unknown field \"\(unknown)\"")
        }
    }

    private mutating func take(_ name: String) -> JSONScalar? {
        read.insert(name)
        guard let value = values[name] else { return nil }
        if value == .null { return nil }
        return value
    }
}

/// A strict parser for one JSON object of scalar values (RFC 8259 grammar, no extensions):
/// small, allocation-light, and precise about where a body went wrong.
struct FlatJSONParser {
    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseObject() throws(BodyError) -> [String: JSONScalar] {
        // No body at all means no fields; anything else, whitespace alone included, must be JSON.
        if bytes.isEmpty { return [:] }
        skipSpace()
        try expect(UInt8(ascii: "{"), "a JSON object")
        var object: [String: JSONScalar] = [:]
        skipSpace()
        if peek == UInt8(ascii: "}") {
            index += 1
        } else {
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw malformed("expected a field name in quotes") }
                let name = try parseString()
                skipSpace()
                try expect(UInt8(ascii: ":"), "\":\" after a field name")
                skipSpace()
                let value = try parseValue(field: name)
                guard object.updateValue(value, forKey: name) == nil else {
                    throw BodyError(kind: .invalidField, detail: "field \"\(name)\" appears twice")
                }
                skipSpace()
                if peek == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "}"), "\",\" or \"}\"")
                break
            }
        }
        skipSpace()
        guard index == bytes.count else { throw malformed("unexpected text after the JSON object") }
        return object
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(BodyError) {
        guard peek == byte else { throw malformed("expected \(what)") }
        index += 1
    }

    private func malformed(_ detail: String) -> BodyError {
        BodyError(kind: .malformed, detail: "malformed JSON at byte \(index): \(detail)")
    }

    private mutating func parseValue(field: String) throws(BodyError) -> JSONScalar {
        switch peek {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            throw BodyError(kind: .invalidField, detail: "\"\(field)\" must be a scalar, not an object or array")
        case .some(let byte) where byte == UInt8(ascii: "-") || (0x30...0x39).contains(byte):
            return try parseNumber()
        default: throw malformed("expected a value for \"\(field)\"")
        }
    }

    private mutating func literal(_ word: StaticString) throws(BodyError) {
        let text = word.withUTF8Buffer { Array($0) }
        guard bytes.count - index >= text.count, Array(bytes[index..<index + text.count]) == text else {
            throw malformed("expected a value")
        }
        index += text.count
    }

    private mutating func parseNumber() throws(BodyError) -> JSONScalar {
        let start = index
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, (0x30...0x39).contains(first) else { throw malformed("expected a digit") }
        index += 1
        if first != UInt8(ascii: "0") { while let byte = peek, (0x30...0x39).contains(byte) { index += 1 } }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek, (0x30...0x39).contains(byte) else { throw malformed("expected a digit") }
            while let byte = peek, (0x30...0x39).contains(byte) { index += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek, (0x30...0x39).contains(byte) else { throw malformed("expected a digit") }
            while let byte = peek, (0x30...0x39).contains(byte) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw malformed("a number out of range") }
        // As JSON Schema has it, 5.0 is an integer; beyond 2^53 a double is not exact.
        return .number(value, isInteger: value.rounded() == value && abs(value) <= 9.007_199_254_740_992e15)
    }

    private mutating func parseString() throws(BodyError) -> String {
        index += 1  // the opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = index
        var text = ""
        while true {
            guard let byte = peek else { throw malformed("a string that never ends") }
            if byte == UInt8(ascii: "\"") {
                break
            } else if byte == UInt8(ascii: "\\") {
                text += try utf8(bytes[runStart..<index])
                index += 1
                guard let escape = peek else { throw malformed("a string that never ends") }
                index += 1
                switch escape {
                case UInt8(ascii: "\""): text += "\""
                case UInt8(ascii: "\\"): text += "\\"
                case UInt8(ascii: "/"): text += "/"
                case UInt8(ascii: "b"): text += "\u{08}"
                case UInt8(ascii: "f"): text += "\u{0C}"
                case UInt8(ascii: "n"): text += "\n"
                case UInt8(ascii: "r"): text += "\r"
                case UInt8(ascii: "t"): text += "\t"
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        guard peek == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u")
                        else { throw malformed("a lone surrogate in \\u escape") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw malformed("a lone surrogate in \\u escape") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw malformed("an invalid \\u escape") }
                    scalars.removeAll()
                    scalars.append(scalar)
                    text += String(scalars)
                default: throw malformed("an invalid escape")
                }
                runStart = index
            } else if byte < 0x20 {
                throw malformed("a control character inside a string")
            } else {
                index += 1
            }
        }
        text += try utf8(bytes[runStart..<index])
        index += 1  // the closing quote
        return text
    }

    private mutating func hex4() throws(BodyError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw malformed("a short \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw malformed("a bad hex digit in \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    private func utf8(_ slice: ArraySlice<UInt8>) throws(BodyError) -> String {
        guard let text = String(validating: slice, as: UTF8.self) else { throw malformed("a string that is not UTF-8") }
        return text
    }
}
