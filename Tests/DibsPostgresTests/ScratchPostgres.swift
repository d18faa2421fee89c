import Foundation
import LeaseStoreConformance

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
        port = try LocalServers.freePort()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try LocalServers.run("/bin/chown", ["postgres:postgres", directory]) }
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
            try LocalServers.run("/usr/sbin/runuser", ["-u", "postgres", "--", tool] + arguments)
        } else {
            try LocalServers.run(tool, arguments)
        }
    }
}
