import Foundation

/// A private Postgres cluster for one test that needs to stop, restart or pause the server
/// without disturbing the shared one: made with the same Debian binaries as scripts/dev,
/// on a free loopback port, as the `postgres` user when the tests run as root.
final class ScratchPostgres: @unchecked Sendable {
    let directory: String
    let port: Int
    private let bin: String

    init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw SetupError(description: "no Postgres under /usr/lib/postgresql: run scripts/dev up to install it")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = NSTemporaryDirectory() + "dibs-pg-\(UUID().uuidString.prefix(8))"
        port = try Self.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try Self.run("/bin/chown", ["postgres:postgres", directory]) }
        try asOwner("\(bin)/initdb", ["-D", "\(directory)/data", "-U", "dibs", "--auth=trust", "-E", "UTF8"])
        try start()
        try asOwner("\(bin)/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "dibs", "dibs"])
    }

    var url: String { "postgres://dibs@127.0.0.1:\(port)/dibs" }

    func start() throws {
        try asOwner(
            "\(bin)/pg_ctl",
            [
                "-D", "\(directory)/data", "-l", "\(directory)/log", "-w", "-o",
                "-p \(port) -c listen_addresses=127.0.0.1 -k \(directory)", "start",
            ])
    }

    /// Stops the server at once, as a crash would (no checkpoint).
    func stop() throws {
        try asOwner("\(bin)/pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
    }

    func destroy() {
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func asOwner(_ tool: String, _ arguments: [String]) throws {
        if getuid() == 0 {
            try Self.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try Self.run(tool, arguments)
        }
    }

    /// Runs a tool and waits for it. Through `posix_spawn` and `waitpid`, not Foundation's
    /// `Process`, whose wait did not return here once pg_ctl had left a server behind.
    static func run(_ tool: String, _ arguments: [String]) throws {
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

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw SetupError(description: "no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
