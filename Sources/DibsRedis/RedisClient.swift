import DibsCore
public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

/// A small pool of pipelined Redis connections.
///
/// A flash sale sends thousands of claims at once, so no call parks a thread: SwiftNIO does
/// the socket I/O and hiredis only encodes and decodes, with many commands in flight on each
/// connection. A connection that drops is reconnected with backoff; while Redis is down,
/// calls fail at once with `.storeUnavailable` instead of waiting.
public final class RedisClient: Sendable {
    /// Settings of the client.
    public struct Configuration: Sendable {
        /// Connections in the pool; each carries many commands at once.
        public var connections = 2
        /// How long a command may take before it fails with `.timeout` (outcome unknown).
        public var commandTimeout: Duration = .seconds(2)
        /// How long a connection attempt may take.
        public var connectTimeout: Duration = .seconds(1)
        /// The first wait before reconnecting after a failure; it doubles up to the maximum.
        public var reconnectBackoff: Duration = .milliseconds(50)
        public var maximumReconnectBackoff: Duration = .seconds(2)

        /// The defaults.
        public init() {}
    }

    private enum Slot {
        case idle
        case connecting(Task<RedisConnection, any Error>)
        case connected(RedisConnection)
        case down(retryAt: ContinuousClock.Instant, backoff: Duration, reason: String)
    }

    public let url: RedisURL
    private let configuration: Configuration
    /// The event loop of each connection: connection `i` lives on `loops[i % loops.count]`,
    /// so each loop of the group has its own, and a caller on a loop uses that loop's.
    private let loops: [any EventLoop]
    private let logger: Logger
    private let slots: Mutex<[Slot]>
    private let next = Atomic<Int>(0)

    /// Makes a client; it connects on first use.
    public init(
        url: RedisURL, configuration: Configuration = Configuration(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) {
        self.url = url
        self.configuration = configuration
        self.loops = Array(group.makeIterator())
        self.logger = logger
        self.slots = Mutex(Array(repeating: .idle, count: max(1, configuration.connections)))
    }

    /// Closes every connection.
    public func close() {
        let connections = slots.withLock { slots -> [RedisConnection] in
            defer { slots = slots.map { _ in .idle } }
            return slots.compactMap { if case .connected(let c) = $0 { c } else { nil } }
        }
        connections.forEach { $0.close() }
    }

    /// Sends a command; an error reply comes back as `.error`, a failure to reach Redis as a
    /// thrown `DibsError`.
    public func send(_ arguments: [String]) async throws -> RESPValue {
        let index = next.wrappingAdd(1, ordering: .relaxed).oldValue % configuration.connections
        let connection = try await connection(at: index)
        do {
            return try await connection.send(arguments, timeout: configuration.commandTimeout)
        } catch {
            throw failure(error, at: index, on: connection)
        }
    }

    /// Sends a command without awaiting it: `done` gets what `send` would answer, once, on
    /// the event loop of the connection used — the caller's own when the caller runs on an
    /// event loop of this client's group, so a request read there is answered there with no
    /// thread hop. With no connection up yet it goes through `send`, in a task.
    func start(_ arguments: [String], then done: @escaping @Sendable (Result<RESPValue, DibsError>) -> Void) {
        guard let (index, connection) = readyConnection() else {
            Task {
                do { done(.success(try await send(arguments))) } catch { done(.failure(Self.dibsError(error))) }
            }
            return
        }
        connection.start(arguments, timeout: configuration.commandTimeout).whenComplete { result in
            switch result {
            case .success(let reply): done(.success(reply))
            case .failure(let error): done(.failure(self.failure(error, at: index, on: connection)))
            }
        }
    }

    /// Runs a script by its SHA-1, loading it when Redis does not know it (`NOSCRIPT`, after a
    /// restart or `SCRIPT FLUSH`).
    func eval(_ script: Script, keys: [String], arguments: [String]) async throws -> RESPValue {
        let call = Self.evalsha(script, keys, arguments)
        let reply = try await send(call)
        if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
            let loaded = try await send(["SCRIPT", "LOAD", script.source])
            guard loaded.text == script.sha1 else {
                throw DibsError(.internalError, "Redis did not load a Dibs script: \(loaded)")
            }
            return try await send(call)
        }
        return reply
    }

    /// `eval` without awaiting, as `start` sends: a script Redis does not know is loaded and
    /// run again by `eval`, in a task.
    func startEval(
        _ script: Script, keys: [String], arguments: [String],
        then done: @escaping @Sendable (Result<RESPValue, DibsError>) -> Void
    ) {
        start(Self.evalsha(script, keys, arguments)) { result in
            guard case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") else {
                return done(result)
            }
            Task {
                do {
                    done(.success(try await self.eval(script, keys: keys, arguments: arguments)))
                } catch {
                    done(.failure(Self.dibsError(error)))
                }
            }
        }
    }

    private static func evalsha(_ script: Script, _ keys: [String], _ arguments: [String]) -> [String] {
        ["EVALSHA", script.sha1, String(keys.count)] + keys + arguments
    }

    /// A connected connection, the one on the caller's event loop if there is one (taking
    /// turns when several are), else any; nil while none is up.
    private func readyConnection() -> (Int, RedisConnection)? {
        let first = next.wrappingAdd(1, ordering: .relaxed).oldValue
        return slots.withLock { slots in
            var other: (Int, RedisConnection)?
            for offset in 0..<slots.count {
                let index = (first + offset) % slots.count
                guard case .connected(let connection) = slots[index], connection.isActive else { continue }
                if connection.channel.eventLoop.inEventLoop { return (index, connection) }
                if other == nil { other = (index, connection) }
            }
            return other
        }
    }

    /// What a command's failure on a connection means to the caller; a closed connection
    /// is taken out of use.
    private func failure(_ error: any Error, at index: Int, on connection: RedisConnection) -> DibsError {
        if error is RedisTimeout {
            return DibsError(
                .timeout, "Redis at \(url.host):\(url.port) did not answer within \(configuration.commandTimeout)")
        }
        markDown(index, connection: connection, reason: "the connection closed")
        return DibsError(.storeUnavailable, "Redis at \(url.host):\(url.port) is unavailable: the connection closed")
    }

    private static func dibsError(_ error: any Error) -> DibsError {
        error as? DibsError ?? DibsError(.internalError, "Redis call failed: \(error)")
    }

    private func connection(at index: Int) async throws -> RedisConnection {
        enum Next {
            case use(RedisConnection)
            case wait(Task<RedisConnection, any Error>)
            case fail(String)
        }
        let now = ContinuousClock.now
        let step: Next = slots.withLock { slots in
            switch slots[index] {
            case .connected(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(let task):
                return .wait(task)
            case .down(let retryAt, _, let reason) where now < retryAt:
                return .fail(reason)
            default:
                let loop = loops[index % loops.count]
                let task = Task { [url, configuration] in
                    try await RedisConnection.connect(to: url, group: loop, timeout: configuration.connectTimeout)
                }
                slots[index] = .connecting(task)
                return .wait(task)
            }
        }
        switch step {
        case .use(let connection):
            return connection
        case .fail(let reason):
            throw DibsError(.storeUnavailable, "Redis at \(url.host):\(url.port) is unavailable: \(reason); retrying")
        case .wait(let task):
            do {
                let connection = try await task.value
                slots.withLock { slots in
                    if case .connecting = slots[index] { slots[index] = .connected(connection) }
                }
                return connection
            } catch let error as DibsError {
                markDown(index, connection: nil, reason: error.message)
                throw error
            } catch {
                let reason = "\(error)"
                markDown(index, connection: nil, reason: reason)
                logger.warning("cannot connect to Redis", metadata: ["url": "\(url)", "error": "\(reason)"])
                throw DibsError(.storeUnavailable, "Redis at \(url.host):\(url.port) is unavailable: \(reason)")
            }
        }
    }

    /// Takes a slot out of use until its backoff passes; the next call after that reconnects.
    private func markDown(_ index: Int, connection: RedisConnection?, reason: String) {
        connection?.close()
        slots.withLock { slots in
            var backoff = configuration.reconnectBackoff
            switch slots[index] {
            case .down(_, let previous, _):
                backoff = min(previous * 2, configuration.maximumReconnectBackoff)
            case .connected(let current):
                // Only the connection that failed is replaced, not a newer one.
                if let connection, current !== connection { return }
            default: break
            }
            slots[index] = .down(retryAt: .now + backoff, backoff: backoff, reason: reason)
        }
    }
}
