/// Writes a JSON object field by field into bytes: the responses are small and fixed in
/// shape, so this skips a Codable round trip on the hot path.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var first = true

    init(capacity: Int = 192) {
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func field(_ name: StaticString, _ value: String?) {
        key(name)
        guard let value else { return append("null") }
        bytes.append(UInt8(ascii: "\""))
        // Nearly every value needs no escape: checked, then copied whole, not appended byte by byte.
        if !value.utf8.contains(where: Self.needsEscape) {
            bytes.append(contentsOf: value.utf8)
            return bytes.append(UInt8(ascii: "\""))
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case 0x0A: append("\\n")
            case 0x0D: append("\\r")
            case 0x09: append("\\t")
            case 0..<0x20:
                append("\\u00")
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func field(_ name: StaticString, _ value: Int64?) {
        key(name)
        guard let value else { return append("null") }
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func field(_ name: StaticString, _ value: Int?) {
        field(name, value.map(Int64.init))
    }

    mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        append(value ? "true" : "false")
    }

    /// A field whose value is JSON already (a nested object or array).
    mutating func field(_ name: StaticString, raw: [UInt8]) {
        key(name)
        bytes.append(contentsOf: raw)
    }

    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    private mutating func key(_ name: StaticString) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        append("\":")
    }

    private mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
    }

    /// A JSON array of already-written values.
    static func array(_ items: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, item) in items.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: item)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }
}
