/// Reads top-level fields of the flat JSON objects `dibs serve` answers with, without a JSON
/// library: a load generator must spend its CPU on sending, not on parsing.
public struct ResponseFields {
    private let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The start of the value of `"name":`, if the field is there.
    private func valueStart(_ name: String) -> Int? {
        let needle = Array("\"\(name)\":".utf8)
        guard bytes.count >= needle.count else { return nil }
        var index = 0
        while index <= bytes.count - needle.count {
            if bytes[index] == needle[0] && Array(bytes[index..<index + needle.count]) == needle {
                return index + needle.count
            }
            index += 1
        }
        return nil
    }

    public func string(_ name: String) -> String? {
        guard var index = valueStart(name), index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        var out: [UInt8] = []
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
            out.append(bytes[index])
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    public func integer(_ name: String) -> Int64? {
        guard var index = valueStart(name) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while index < bytes.count, (0x30...0x39).contains(bytes[index]) {
            value = value * 10 + Int64(bytes[index] - 0x30)
            digits += 1
            index += 1
        }
        return digits > 0 ? value : nil
    }

    /// A UTC timestamp as the server writes it (`2026-11-27T09:30:00.123Z`), in milliseconds
    /// since 1970; `nil` when absent or in another shape.
    public func milliseconds(_ name: String) -> Int64? {
        guard let text = string(name) else { return nil }
        let parts = Array(text.utf8)
        guard parts.count == 24, parts[4] == UInt8(ascii: "-"), parts[10] == UInt8(ascii: "T"),
            parts[19] == UInt8(ascii: "."), parts[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            var value: Int64 = 0
            for byte in parts[from..<(from + count)] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2), let milli = number(20, 3)
        else { return nil }
        // Days since 1970 from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli
    }

    /// `held`, `waitlisted`, `entered`, a problem's name (`sold-out`), or `http-<status>`.
    public func outcome(status: Int) -> String {
        if status == 201 { return "held" }
        if status == 202 { return string("state") ?? "queued" }
        if let type = string("type"), type.hasPrefix("urn:dibs:problem:") { return String(type.dropFirst(17)) }
        return "http-\(status)"
    }
}

/// `http://host:port` split into its host and port; `nil` for anything else.
public func hostAndPort(of url: String) -> (host: String, port: Int)? {
    guard url.hasPrefix("http://") else { return nil }
    let parts = url.dropFirst(7).prefix { $0 != "/" }.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else { return nil }
    return (String(parts[0]), port)
}
