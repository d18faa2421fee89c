public import NIOCore
import NIOHTTP1
public import NIOPosix

/// An HTTP response as a client reads it.
public struct HTTPReply: Sendable {
    public let status: Int
    public let headers: [(String, String)]
    public let body: [UInt8]

    /// The first header of that name (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// Raised when a connection closes with requests unanswered, or a request takes too long.
public struct HTTPClientError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// One keep-alive HTTP/1.1 connection on SwiftNIO, lean enough to drive a load test:
/// requests may be pipelined; responses complete them in order.
public final class HTTP1Connection: Sendable {
    private let channel: any Channel
    public let host: String
    public let port: Int

    private init(channel: any Channel, host: String, port: Int) {
        self.channel = channel
        self.host = host
        self.port = port
    }

    /// Connects to `host:port`.
    public static func connect(
        host: String, port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> HTTP1Connection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HTTP1ClientHandler())
                }
            }
            .connect(host: host, port: port).get()
        return HTTP1Connection(channel: channel, host: host, port: port)
    }

    public var isActive: Bool { channel.isActive }

    public func close() { channel.close(promise: nil) }

    /// Sends a request and waits for its response. Past `timeout` the connection is closed
    /// (a late answer could otherwise be taken for the next request's) and the call throws.
    public func send(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) async throws -> HTTPReply {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.add(name: "Content-Length", value: String(body?.count ?? 0))
        let request = HTTP1ClientHandler.Request(head: head, body: body)
        let promise = channel.eventLoop.makePromise(of: HTTPReply.self)
        if let timeout {
            let channel = self.channel
            let deadline = channel.eventLoop.scheduleTask(
                in: .nanoseconds(
                    Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
            ) {
                promise.fail(HTTPClientError(description: "no answer within \(timeout)"))
                channel.close(promise: nil)
            }
            promise.futureResult.whenComplete { _ in deadline.cancel() }
        }
        channel.writeAndFlush(HTTP1ClientHandler.Outbound(request: request, promise: promise), promise: nil)
        return try await promise.futureResult.get()
    }
}

/// Matches responses to requests, oldest first.
final class HTTP1ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Outbound
    typealias OutboundOut = HTTPClientRequestPart

    struct Request {
        let head: HTTPRequestHead
        let body: [UInt8]?
    }

    struct Outbound {
        let request: Request
        let promise: EventLoopPromise<HTTPReply>
    }

    private var waiting = CircularBuffer<EventLoopPromise<HTTPReply>>()
    private var status = 0
    private var headers: [(String, String)] = []
    private var body: [UInt8] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        waiting.append(outbound.promise)
        context.write(wrapOutboundOut(.head(outbound.request.head)), promise: nil)
        if let bytes = outbound.request.body, !bytes.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            headers = head.headers.map { ($0.name, $0.value) }
            body.removeAll(keepingCapacity: true)
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            let reply = HTTPReply(status: status, headers: headers, body: body)
            // A timed-out request's promise is failed already; succeeding it again is a no-op.
            waiting.popFirst()?.succeed(reply)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(HTTPClientError(description: "the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}
