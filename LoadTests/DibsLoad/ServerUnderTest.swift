import Foundation

/// A `dibs serve` that the run starts itself, so that a fault preset may kill it: faults act
/// only on processes the run started, never on a server it was pointed at.
final class ServerUnderTest: @unchecked Sendable {
    private let command: [String]
    private let environment: [String: String]
    private var process: Process?
    private let lock = NSLock()

    /// `command` is the server's command line, e.g. `[".build/release/dibs", "serve", "--port", "8099"]`;
    /// it must name a fixed port, so a restarted server is found where the old one was.
    init(command: [String]) {
        self.command = command
        // A restarted server reads what the killed one kept only with the same hold-token
        // key, as every instance of a deployment has: one for the run when none is set.
        var environment = ProcessInfo.processInfo.environment
        if environment["DIBS_HOLD_TOKEN_KEY"] == nil {
            environment["DIBS_HOLD_TOKEN_KEY"] = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }
                .joined()
        }
        self.environment = environment
    }

    /// Starts the server and waits (up to 30 s) until it says it listens; returns its port.
    @discardableResult
    func start() throws -> Int {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        lock.withLock { self.process = process }
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: "listening on http://") {
                let rest = text[range.upperBound...]
                let address = rest.prefix { !$0.isWhitespace }
                if let port = address.split(separator: ":").last.flatMap({ Int($0) }) {
                    // Keep reading in the background so the pipe never fills.
                    Thread.detachNewThread { while !output.fileHandleForReading.availableData.isEmpty {} }
                    return port
                }
            }
        }
        process.terminate()
        throw LoadError("the server did not start: \(text.suffix(400))")
    }

    /// kill -9: the process ends with whatever it was doing.
    func kill() {
        lock.withLock {
            guard let process, process.isRunning else { return }
            Foundation.kill(process.processIdentifier, SIGKILL)
            Self.waitForExit(process)
        }
    }

    /// Polls instead of `waitUntilExit`, which was seen to hang inside a test process.
    private static func waitForExit(_ process: Process, killAfter seconds: Double = 5) {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// SIGTERM, and wait for the exit.
    func stop() {
        lock.withLock {
            guard let process, process.isRunning else { return }
            process.terminate()
            Self.waitForExit(process, killAfter: 10)
        }
    }
}
