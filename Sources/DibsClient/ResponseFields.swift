import DibsCore

/// Reads top-level fields of the flat JSON objects `dibs serve` answers with, without a JSON
/// library: a load generator must spend its CPU on sending, not on parsing.
public struct ResponseFields {
    /// The body as received.
    public let bytes: [UInt8]

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

    /// A timestamp field (RFC 3339, as the server writes it) in milliseconds since 1970;
    /// `nil` when absent or not a timestamp.
    public func milliseconds(_ name: String) -> Int64? {
        string(name).flatMap(RFC3339.parse)?.milliseconds
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
