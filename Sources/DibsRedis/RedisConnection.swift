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
        try await send(bytes: arguments.map { Array($0.utf8) }, timeout: timeout)
    }

    func send(bytes arguments: [[UInt8]], timeout: Duration) async throws -> RESPValue {
        let encoded = RESPCodec.encode(arguments)
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            handler.value.enqueue(encoded, promise: promise, timeout: timeout, channel: channel)
        }
        return try await promise.futureResult.get()
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

    private final class Waiting {
        let promise: EventLoopPromise<RESPValue>
        var timer: Scheduled<Void>?
        var done = false
        init(promise: EventLoopPromise<RESPValue>) { self.promise = promise }
    }

    private let decoder = RESPDecoder()
    private var waiting = CircularBuffer<Waiting>()
    private var context: ChannelHandlerContext?
    private var flushScheduled = false
    private var closed = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) {
        failAll()
        self.context = nil
    }

    func enqueue(_ bytes: [UInt8], promise: EventLoopPromise<RESPValue>, timeout: Duration, channel: any Channel) {
        guard let context, !closed else {
            promise.fail(RedisConnectionClosed())
            return
        }
        let entry = Waiting(promise: promise)
        entry.timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(timeout.wholeMilliseconds)) {
            // The reply may still come; it will be read and dropped, keeping the order.
            guard !entry.done else { return }
            entry.done = true
            promise.fail(RedisTimeout())
        }
        waiting.append(entry)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let writePromise = context.eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.assumeIsolated().whenFailure { _ in
            // A write that fails (the channel closed) fails its command too: nobody waits forever.
            guard !entry.done else { return }
            entry.done = true
            entry.timer?.cancel()
            promise.fail(RedisConnectionClosed())
        }
        context.write(wrapOutboundOut(buffer), promise: writePromise)
        if !flushScheduled {
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute { [self] in
                flushScheduled = false
                self.context?.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try buffer.withUnsafeReadableBytes { try decoder.feed($0) }
            while let reply = try decoder.next() {
                guard let entry = waiting.popFirst() else { continue }
                guard !entry.done else { continue }
                entry.done = true
                entry.timer?.cancel()
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
        while let entry = waiting.popFirst() {
            guard !entry.done else { continue }
            entry.done = true
            entry.timer?.cancel()
            entry.promise.fail(RedisConnectionClosed())
        }
    }
}
