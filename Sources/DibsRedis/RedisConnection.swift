import DibsCore
import NIOCore
import NIOPosix

/// One Redis connection with many commands in flight (pipelining): commands are written as
/// they come and flushed once per event-loop tick; replies fulfil the oldest waiting
/// command, in order.
final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RedisReplyHandler>

    private init(channel: any Channel, handler: NIOLoopBound<RedisReplyHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects, then authenticates and selects the database the URL names.
    static func connect(to url: RedisURL, group: any EventLoopGroup, timeout: Duration) async throws -> RedisConnection
    {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.milliseconds(timeout.wholeMilliseconds))
            .connect(host: url.host, port: url.port).get()
        // Redis sends nothing unasked, so the handler can join after the connect.
        let handler = try await channel.eventLoop.submit {
            let handler = RedisReplyHandler()
            try channel.pipeline.syncOperations.addHandler(handler)
            return NIOLoopBound(handler, eventLoop: channel.eventLoop)
        }.get()
        let connection = RedisConnection(channel: channel, handler: handler)
        do {
            if let password = url.password {
                let auth = url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]
                if case .error(let message) = try await connection.send(auth, timeout: timeout) {
                    throw DibsError(
                        .storeUnavailable, "Redis at \(url.host):\(url.port) refused the credentials: \(message)")
                }
            }
            if url.database != 0,
                case .error(let message) = try await connection.send(
                    ["SELECT", String(url.database)], timeout: timeout)
            {
                throw DibsError(.storeUnavailable, "Redis refused database \(url.database): \(message)")
            }
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    var isActive: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }

    /// Sends one command and waits for its reply, at most `timeout`.
    func send(_ arguments: [String], timeout: Duration) async throws -> RESPValue {
        try await start(arguments, timeout: timeout).get()
    }

    /// Sends one command; the future completes on this connection's event loop. Called on
    /// that loop, it queues the command at once, with no hop.
    func start(_ arguments: [String], timeout: Duration) -> EventLoopFuture<RESPValue> {
        // A closure, not a key path: applied per argument, `\.utf8` was projected at run time.
        let arguments = arguments.lazy.map { $0.utf8 }
        var buffer = channel.allocator.buffer(capacity: RESPCodec.capacity(arguments))
        RESPCodec.encode(arguments, into: &buffer)
        let encoded = buffer
        let eventLoop = channel.eventLoop
        let promise = eventLoop.makePromise(of: RESPValue.self)
        if eventLoop.inEventLoop {
            handler.value.enqueue(encoded, promise: promise, timeout: timeout)
        } else {
            let handler = self.handler
            eventLoop.execute { handler.value.enqueue(encoded, promise: promise, timeout: timeout) }
        }
        return promise.futureResult
    }
}

/// Raised when a command's reply does not come within its timeout; the outcome is unknown.
struct RedisTimeout: Error {}
/// Raised for commands in flight when the connection closes.
struct RedisConnectionClosed: Error {}

/// The channel handler: keeps the waiting commands in order and decodes replies with hiredis.
final class RedisReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline
        /// Failed with a timeout; its reply, if it comes, is read and dropped, keeping the order.
        var timedOut = false
    }

    private let decoder = RESPDecoder()
    private var waiting = CircularBuffer<Waiting>()
    private var context: ChannelHandlerContext?
    private var flushScheduled = false
    /// One timer for all the commands waiting, at the earliest deadline (not one per command).
    private var sweep: Scheduled<Void>?
    private var closed = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        failAll()
        self.context = nil
    }

    func enqueue(_ command: ByteBuffer, promise: EventLoopPromise<RESPValue>, timeout: Duration) {
        guard let context, !closed else {
            promise.fail(RedisConnectionClosed())
            return
        }
        let deadline = NIODeadline.now() + .milliseconds(timeout.wholeMilliseconds)
        waiting.append(Waiting(promise: promise, deadline: deadline))
        if sweep == nil { armSweep(at: deadline, context) }
        // A write that fails closes the channel, and `channelInactive` fails every command.
        context.write(wrapOutboundOut(command), promise: nil)
        if !flushScheduled {
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute { [self] in
                flushScheduled = false
                self.context?.flush()
            }
        }
    }

    private func armSweep(at deadline: NIODeadline, _ context: ChannelHandlerContext) {
        sweep = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            sweep = nil
            sweepTimeouts()
        }
    }

    /// Fails the commands past their deadline and sets the timer for the next deadline.
    private func sweepTimeouts() {
        let now = NIODeadline.now()
        var expired: [EventLoopPromise<RESPValue>] = []
        var next: NIODeadline?
        for index in waiting.indices where !waiting[index].timedOut {
            if waiting[index].deadline <= now {
                waiting[index].timedOut = true
                expired.append(waiting[index].promise)
            } else {
                next = min(next ?? waiting[index].deadline, waiting[index].deadline)
            }
        }
        if let next, let context { armSweep(at: next, context) }
        // Failed after the walk: a caller's callback may send again, changing `waiting`.
        for promise in expired { promise.fail(RedisTimeout()) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { try decoder.feed($0) }
            while let reply = try decoder.next() {
                guard let entry = waiting.popFirst(), !entry.timedOut else { continue }
                entry.promise.succeed(reply)
            }
        } catch {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        failAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func failAll() {
        sweep?.cancel()
        sweep = nil
        while let entry = waiting.popFirst() {
            if !entry.timedOut { entry.promise.fail(RedisConnectionClosed()) }
        }
    }
}
