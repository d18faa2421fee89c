import DibsCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Answers a claim on a sold-out drop on the event loop that read it, before it reaches the
/// router: the answer `DibsService.claim` would give, without the hops into Swift concurrency
/// and back that cost more than the answer itself. Any claim this cannot answer whole — any
/// error, a key the store answered otherwise, a rate limit kept in Redis — goes on to the
/// router as it came.
///
/// Sits after Hummingbird's connection-state handler, so idle timeouts and graceful shutdown
/// see these requests and answers like any other. HTTP/1.1 answers in request order: while a
/// request passed on is unanswered, every later request is passed on too.
final class SoldOutChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Holding a claim's parts until its end, to answer it here or pass it on whole.
        case holding(head: HTTPRequest, drop: Substring, body: ByteBuffer?, startedAt: ContinuousClock.Instant)
        /// Passing the current request's parts on.
        case passing
    }

    private let service: DibsService
    private let maximumBodyBytes: Int
    private var state = State.idle
    /// Requests passed on whose answer has not been written yet.
    private var unanswered = 0

    init(service: DibsService, maximumBodyBytes: Int) {
        self.service = service
        self.maximumBodyBytes = maximumBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (state, part) {
        case (.idle, .head(let head)):
            if unanswered == 0, let drop = Self.claimedDrop(head) {
                state = .holding(head: head, drop: drop, body: nil, startedAt: .now)
            } else {
                unanswered += 1
                state = .passing
                context.fireChannelRead(data)
            }
        case (.holding(let head, let drop, var body, let startedAt), .body(var chunk)):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maximumBodyBytes {
                // Over the cap: the router gives the 413.
                passOn(context, head, body)
                context.fireChannelRead(data)
                state = .passing
            } else {
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                state = .holding(head: head, drop: drop, body: body, startedAt: startedAt)
            }
        case (.holding(let head, let drop, let body, let startedAt), .end):
            state = .idle
            let request = Self.apiRequest(head, body: body, remoteAddress: context.channel.remoteAddress)
            if let answer = service.soldOutWithoutIO(request, drop: String(drop)) {
                write(answer, context)
                service.metrics.claimAnsweredOnEventLoop()
                service.metrics.request(route: Routes.claim.path, status: answer.status, took: .now - startedAt)
            } else {
                passOn(context, head, body)
                context.fireChannelRead(data)
            }
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(data)
        default:
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    private func passOn(_ context: ChannelHandlerContext, _ head: HTTPRequest, _ body: ByteBuffer?) {
        unanswered += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
    }

    private func write(_ answer: APIResponse, _ context: ChannelHandlerContext) {
        var head = HTTPResponse(
            status: HTTPResponse.Status(code: answer.status), headerFields: DibsHTTPServer.headers(answer))
        head.headerFields[.contentLength] = String(answer.body.count)
        head.headerFields[.date] = HTTPDate.now()
        head.headerFields[.server] = DibsHTTPServer.serverName
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The drop of `POST /v1/drops/{drop}/claims`, plainly written (no query; no `Connection`
    /// header but keep-alive, as the router closes after `close`); nil for anything else.
    static func claimedDrop(_ head: HTTPRequest) -> Substring? {
        guard head.method == .post, let path = head.path,
            head.headerFields[.connection].map({ $0.lowercased() == "keep-alive" }) ?? true,
            path.hasPrefix("/v1/drops/"), path.hasSuffix("/claims")
        else { return nil }
        let drop = path.dropFirst(10).dropLast(7)
        guard !drop.isEmpty, !drop.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
        else { return nil }
        return drop
    }

    private static func apiRequest(_ head: HTTPRequest, body: ByteBuffer?, remoteAddress: SocketAddress?)
        -> APIRequest
    {
        APIRequest(
            method: .post, path: head.path ?? "", authorization: head.headerFields[.authorization],
            idempotencyKey: head.headerFields[DibsHTTPServer.idempotencyKeyField],
            contentType: head.headerFields[.contentType], clientIP: DibsHTTPServer.clientIP(remoteAddress),
            body: body.map { Array($0.readableBytesView) } ?? [])
    }
}
