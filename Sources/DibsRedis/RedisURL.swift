public import DibsCore

/// Where Redis is: `redis://[user:password@]host:port[/db]`.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    /// Parses a `redis://` URL; throws `DibsError(.invalidInput)` saying what is wrong.
    public init(_ text: String) throws(DibsError) {
        guard text.hasPrefix("redis://") else {
            throw DibsError(.invalidInput, "a Redis URL starts with redis://, got \"\(text.prefix(40))\"")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            if !path.isEmpty {
                guard let database = Int(path), database >= 0 else {
                    throw DibsError(.invalidInput, "the database of a Redis URL is a number, got \"\(path)\"")
                }
                self.database = database
            }
            rest = rest[..<slash]
        }
        user = nil
        password = nil
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        if let colon = rest.lastIndex(of: ":") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw DibsError(.invalidInput, "the port of a Redis URL is a number from 1 to 65535")
            }
            self.port = port
            host = String(rest[..<colon])
        } else {
            port = 6379
            host = String(rest)
        }
        guard !host.isEmpty else { throw DibsError(.invalidInput, "a Redis URL names its host") }
    }

    /// The URL without its password.
    public var description: String { "redis://\(host):\(port)/\(database)" }
}
