import DibsClient
import Foundation

/// A Redis and a Postgres that the run starts itself on loopback, so that the restart-redis and
/// pause-postgres faults act only on processes the run owns. Redis keeps an append-only file
/// synced on every write (a restart must lose nothing acknowledged); Postgres is a fresh
/// cluster with the schema applied and two API keys made for the run. Everything lives in one
/// scratch directory, removed at the end.
final class OwnServers: @unchecked Sendable {
    let directory: String
    let redisPort: Int
    let postgresPort: Int
    private(set) var operatorKey = ""
    private(set) var storefrontKey = ""
    private let postgresBin: String
    private let lock = NSLock()
    private var redis: Process?
    private var postgres: Process?
    private var paused: [pid_t] = []

    var redisURL: String { "redis://127.0.0.1:\(redisPort)" }
    var postgresURL: String { "postgres://dibs@127.0.0.1:\(postgresPort)/dibs" }
    private static var asRoot: Bool { getuid() == 0 }

    /// Starts both, applies the schema with `dibs` (the binary of the serve command) and
    /// makes the run's keys; `log` reports each step.
    init(dibs: String, schema: String, log: @Sendable (String) -> Void) throws {
        guard let bin = Self.postgresBin() else {
            throw LoadError("no Postgres binaries under /usr/lib/postgresql (apt-get install postgresql)")
        }
        postgresBin = bin
        // Commands run from / (the postgres user may not enter the working directory).
        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }
        let dibs = absolute(dibs)
        let schema = absolute(schema)
        // /var/tmp: the postgres user must reach the cluster when the run is root.
        directory = "/var/tmp/dibs-load-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        redisPort = try Self.freePort()
        postgresPort = try Self.freePort()
        try FileManager.default.createDirectory(atPath: directory + "/redis", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/postgres", withIntermediateDirectories: true)
        if Self.asRoot { try Self.run(["/bin/chown", "-R", "postgres:postgres", directory + "/postgres"]) }
        log("own servers: Redis on 127.0.0.1:\(redisPort), Postgres on 127.0.0.1:\(postgresPort) (\(directory))")
        do {
            try prepare(dibs: dibs, schema: schema)
        } catch {
            stop()  // nothing started is left behind
            throw error
        }
    }

    private func prepare(dibs: String, schema: String) throws {
        let bin = postgresBin
        try startRedis()
        try Self.run(
            asPostgres([
                "\(bin)/initdb", "-D", directory + "/postgres/data", "-U", "dibs", "--auth=trust", "-E", "UTF8",
                "--locale=C.UTF-8",
            ]))
        try startPostgres()
        try Self.run(["\(bin)/createdb", "-h", "127.0.0.1", "-p", "\(postgresPort)", "-U", "dibs", "dibs"])
        try Self.run([dibs, "migrate", "--postgres-url", postgresURL, "--schema", schema])
        operatorKey = try Self.run([
            dibs, "keys", "create", "--postgres-url", postgresURL, "--scope", "operator", "--name", "load-operator",
            "--quiet",
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
        storefrontKey = try Self.run([
            dibs, "keys", "create", "--postgres-url", postgresURL, "--scope", "storefront", "--name", "load-storefront",
            "--quiet",
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func startRedis() throws {
        let process = try Self.launch([
            "redis-server", "--bind", "127.0.0.1", "--port", "\(redisPort)", "--dir", directory + "/redis", "--save",
            "",
            "--appendonly", "yes", "--appendfsync", "always", "--logfile", directory + "/redis/redis.log",
        ])
        lock.withLock { redis = process }
        try Self.waitForPort(redisPort, what: "Redis")
    }

    private func startPostgres() throws {
        let data = directory + "/postgres/data"
        let command = [
            "\(postgresBin)/postgres", "-D", data, "-p", "\(postgresPort)", "-k", directory + "/postgres", "-c",
            "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "fsync=on",
        ]
        // setpriv replaces itself with postgres, so the process the run holds is the postmaster.
        let process = try Self.launch(
            Self.asRoot
                ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] + command
                : command, log: directory + "/postgres/postgres.log")
        lock.withLock { postgres = process }
        try Self.waitForPort(postgresPort, what: "Postgres")
        for _ in 0..<100 {
            if (try? Self.run(["\(postgresBin)/pg_isready", "-q", "-h", "127.0.0.1", "-p", "\(postgresPort)"])) != nil {
                return
            }
            usleep(100_000)
        }
        throw LoadError("Postgres did not become ready: see \(directory)/postgres/postgres.log")
    }

    /// kill -9 Redis, then start it again on the same port and files after `downFor`.
    func restartRedis(downFor: Duration) async throws {
        lock.withLock {
            if let redis, redis.isRunning { kill(redis.processIdentifier, SIGKILL) }
        }
        try await Task.sleep(for: downFor)
        try startRedis()
    }

    /// SIGSTOP the postmaster and every backend it forked; `resumePostgres` continues them.
    func pausePostgres() {
        lock.withLock {
            guard let postgres else { return }
            let postmaster = postgres.processIdentifier
            paused = [postmaster] + Self.children(of: postmaster)
            for pid in paused { kill(pid, SIGSTOP) }
        }
    }

    func resumePostgres() {
        lock.withLock {
            for pid in paused { kill(pid, SIGCONT) }
            paused = []
        }
    }

    /// Stops both (resuming a paused Postgres first) and removes the scratch directory.
    func stop() {
        resumePostgres()
        lock.withLock {
            if let postgres, postgres.isRunning {
                kill(postgres.processIdentifier, SIGINT)  // fast shutdown
                Self.waitForExit(postgres)
            }
            if let redis, redis.isRunning {
                redis.terminate()
                Self.waitForExit(redis)
            }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: processes

    private func asPostgres(_ command: [String]) -> [String] {
        Self.asRoot ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + command : command
    }

    private static func postgresBin() -> String? {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.sorted { (Int($0) ?? 0) > (Int($1) ?? 0) }.map { "/usr/lib/postgresql/\($0)/bin" }
            .first { FileManager.default.isExecutableFile(atPath: $0 + "/postgres") }
    }

    private static func launch(_ command: [String], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0].hasPrefix("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].hasPrefix("/") ? Array(command.dropFirst()) : command
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        if let log {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            if asRoot { chown(log, postgresUser().uid, postgresUser().gid) }
            let handle = FileHandle(forWritingAtPath: log)
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    private static func postgresUser() -> (uid: uid_t, gid: gid_t) {
        guard let entry = getpwnam("postgres") else { return (0, 0) }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Runs a command to its end; its standard output, or an error with its output.
    @discardableResult
    private static func run(_ command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0].hasPrefix("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].hasPrefix("/") ? Array(command.dropFirst()) : command
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw LoadError("\(command.joined(separator: " ")) failed: \(text.suffix(400))")
        }
        return text
    }

    private static func waitForExit(_ process: Process) {
        for _ in 0..<1000 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The processes whose parent is `parent` (from /proc).
    private static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // After "pid (name) ": state, then the parent's pid.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    private static func freePort() throws -> Int {
        guard let port = freeLoopbackPort() else { throw LoadError("could not find a free loopback port") }
        return port
    }

    /// Waits (up to 30 s) until something accepts connections on the port.
    private static func waitForPort(_ port: Int, what: String) throws {
        for _ in 0..<300 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return }
            usleep(100_000)
        }
        throw LoadError("\(what) did not start listening on 127.0.0.1:\(port)")
    }
}
