import DibsClient
import Foundation

/// A test could not set up what it needs (a server, a URL, a port): it fails, never skips.
public struct SetupError: Error, CustomStringConvertible {
    public let description: String

    /// Makes the error.
    public init(description: String) { self.description = description }
}

/// What the store tests share to reach the servers of `scripts/dev` and to run servers of
/// their own on loopback.
public enum LocalServers {
    /// The value of an environment variable `scripts/dev test` sets; a missing one fails.
    public static func required(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name] else {
            throw SetupError(description: "\(name) is not set: run the tests with scripts/dev test")
        }
        return value
    }

    /// Runs a tool and waits for it. Through `posix_spawn` and `waitpid`, not Foundation's
    /// `Process`, whose wait did not return here once pg_ctl had left a server behind.
    public static func run(_ tool: String, _ arguments: [String]) throws {
        let errorPath = NSTemporaryDirectory() + "dibs-tool-\(UUID().uuidString).err"
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let quoted = ([tool] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = quoted.joined(separator: " ") + " >/dev/null 2>'\(errorPath)' </dev/null"
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
        guard spawned == 0 else { throw SetupError(description: "cannot start \(tool): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            let output = FileManager.default.contents(atPath: errorPath) ?? Data()
            throw SetupError(
                description:
                    "\(tool) \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    /// A loopback port nobody listens on, as the kernel picks it.
    public static func freePort() throws -> Int {
        guard let port = freeLoopbackPort() else { throw SetupError(description: "no free loopback port") }
        return port
    }
}
