public import DibsCore
public import PostgresNIO

/// Where Postgres is: `postgres://user[:password]@host[:port]/database`, as in `.dibs/env`.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// The server cancels a statement that runs longer (the `statement_timeout` setting);
    /// `?statement_timeout=5000` in the URL, in milliseconds. `nil` keeps the server's.
    public var statementTimeout: Duration?

    /// Parses a `postgres://` or `postgresql://` URL; throws `DibsError(.invalidInput)` with
    /// what is wrong.
    public init(_ text: String) throws(DibsError) {
        let schemes = ["postgres://", "postgresql://"]
        guard let scheme = schemes.first(where: { text.hasPrefix($0) }) else {
            throw DibsError(.invalidInput, "a Postgres URL starts with postgres://, got \"\(text.prefix(40))\"")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        statementTimeout = nil
        if let query = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: query)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0] == "statement_timeout" else { continue }
                guard let milliseconds = Int64(parts[1]), milliseconds > 0 else {
                    throw DibsError(.invalidInput, "statement_timeout is a positive number of milliseconds")
                }
                statementTimeout = .milliseconds(milliseconds)
            }
            rest = rest[..<query]
        }
        guard let slash = rest.firstIndex(of: "/"), !rest[rest.index(after: slash)...].isEmpty else {
            throw DibsError(.invalidInput, "a Postgres URL names its database: postgres://user@host:port/database")
        }
        database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        user = "postgres"
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let credentials = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon]).removingPercentEncoding0
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding0
            } else {
                user = String(credentials).removingPercentEncoding0
            }
        }
        if let colon = authority.lastIndex(of: ":") {
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw DibsError(.invalidInput, "the port of a Postgres URL is a number from 1 to 65535")
            }
            self.port = port
            host = String(authority[..<colon])
        } else {
            port = 5432
            host = String(authority)
        }
        guard !host.isEmpty else { throw DibsError(.invalidInput, "a Postgres URL names its host") }
    }

    /// The URL without its password, for logs and messages.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// A client configuration for this server (no TLS: Dibs talks to Postgres on loopback
    /// or a private network).
    public func clientConfiguration() -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        if let statementTimeout {
            configuration.options.additionalStartupParameters.append(
                ("statement_timeout", String(statementTimeout.wholeMilliseconds)))
        }
        return configuration
    }
}

extension String {
    /// Decodes `%XX` escapes (for passwords with reserved characters); leaves bad escapes as they are.
    fileprivate var removingPercentEncoding0: String {
        var bytes: [UInt8] = []
        var iterator = Array(utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
                let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
