import DibsCore
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes

/// Answers claims on the event loop that read them, before they reach the router: the
/// answer `DibsService.claim` would give, without the hops into Swift concurrency and back
/// that cost more than the rest of the answer. A claim on a sold-out drop is answered at
/// once (after the rate limiter, when its buckets are in Redis); a claim on a drop whose store
/// is known goes to the limiter's `startAdmit` and the store's `startClaim` (on Redis, script
/// calls on the same event loop) and is answered when they are. Any claim this cannot answer
/// whole — any fault in it, a drop the router must look up or that was cancelled — goes on
/// to the router as it came.
///
/// Sits after Hummingbird's connection-state handler, so idle timeouts and graceful shutdown
/// see these requests and answers like any other. HTTP/1.1 answers in request order: while a
/// request passed on is unanswered, every later request is passed on too; while a claim
/// started here is unanswered, later requests wait here (and past a few, no more is read).
final class ClaimChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
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
    /// A claim started here is not answered yet.
    private var claimInFlight = false
    /// What was read while a claim was in flight, handled once it is answered: parts, and
    /// an error of the parser, which must reach Hummingbird after the requests before it.
    private var waiting = CircularBuffer<Waiting>()

    private enum Waiting {
        case part(HTTPRequestPart)
        case error(any Error)
    }
    /// A read asked for while too many parts waited, made once fewer do.
    private var readHeld = false
    /// Inside `channelRead`: a store that answers at once must not replay `waiting` there.
    private var reading = false
    private var removed = false

    init(service: DibsService, maximumBodyBytes: Int) {
        self.service = service
        self.maximumBodyBytes = maximumBodyBytes
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        waiting.removeAll()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if claimInFlight { return waiting.append(.part(part)) }
        reading = true
        defer { reading = false }
        handle(part, context)
    }

    /// Reads stop only when many parts wait: pausing on every claim would cost two
    /// `epoll_ctl` calls a claim, and a client that does not pipeline sends nothing meanwhile.
    func read(context: ChannelHandlerContext) {
        if waiting.count >= Self.waitingPartsBeforeReadsStop { readHeld = true } else { context.read() }
    }

    static let waitingPartsBeforeReadsStop = 64

    /// A request that went wrong mid-way (a bad chunk) while a claim was in flight: its error
    /// waits in line, so its answer (`UnreadableRequestHandler`'s problem, once Hummingbird
    /// sees the error) comes after the answers of the requests before it, not ahead of them.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if claimInFlight { waiting.append(.error(error)) } else { context.fireErrorCaught(error) }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    private func handle(_ part: HTTPRequestPart, _ context: ChannelHandlerContext) {
        switch (state, part) {
        case (.idle, .head(let head)):
            if unanswered == 0, let drop = Self.claimedDrop(head) {
                state = .holding(head: head, drop: drop, body: nil, startedAt: .now)
            } else {
                unanswered += 1
                state = .passing
                context.fireChannelRead(wrapInboundOut(part))
            }
        case (.holding(let head, let drop, var body, let startedAt), .body(var chunk)):
            if (body?.readableBytes ?? 0) + chunk.readableBytes > maximumBodyBytes {
                // Over the cap: the router gives the 413.
                passOn(context, head, body)
                context.fireChannelRead(wrapInboundOut(part))
                state = .passing
            } else {
                if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                state = .holding(head: head, drop: drop, body: body, startedAt: startedAt)
            }
        case (.holding(let head, let drop, let body, let startedAt), .end):
            state = .idle
            claim(head, drop: drop, body: body, startedAt: startedAt, context)
        case (.passing, .end):
            state = .idle
            context.fireChannelRead(wrapInboundOut(part))
        default:
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    private func claim(
        _ head: HTTPRequest, drop: Substring, body: ByteBuffer?, startedAt: ContinuousClock.Instant,
        _ context: ChannelHandlerContext
    ) {
        let request = Self.apiRequest(head, body: body, remoteAddress: context.channel.remoteAddress)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        // In flight before the call: a store may answer before it returns.
        claimInFlight = true
        let started = service.claimWithoutWaiting(request, drop: String(drop)) { answer in
            if bound.eventLoop.inEventLoop {
                bound.value.handler.answered(answer, startedAt: startedAt, bound.value.context)
            } else {
                bound.eventLoop.execute {
                    bound.value.handler.answered(answer, startedAt: startedAt, bound.value.context)
                }
            }
        }
        switch started {
        case .started:
            break
        case .answered(let answer):
            claimInFlight = false
            write(answer, startedAt: startedAt, context)
        case nil:
            claimInFlight = false
            passOn(context, head, body)
            context.fireChannelRead(wrapInboundOut(.end(nil)))
        }
    }

    /// A started claim's answer: written, then the requests that waited are handled.
    private func answered(_ answer: APIResponse, startedAt: ContinuousClock.Instant, _ context: ChannelHandlerContext) {
        guard !removed else { return }
        if reading {
            // Answered within `channelRead` (the store failed at once): finish after it.
            return context.eventLoop.assumeIsolated().execute { self.answered(answer, startedAt: startedAt, context) }
        }
        claimInFlight = false
        write(answer, startedAt: startedAt, context)
        if !waiting.isEmpty {
            reading = true
            while !claimInFlight, let next = waiting.popFirst() {
                switch next {
                case .part(let part): handle(part, context)
                case .error(let error): context.fireErrorCaught(error)
                }
            }
            reading = false
            // Outside a read from the socket: what was passed on is delivered on this signal.
            context.fireChannelReadComplete()
        }
        if readHeld && waiting.count < Self.waitingPartsBeforeReadsStop {
            readHeld = false
            context.read()
        }
    }

    private func passOn(_ context: ChannelHandlerContext, _ head: HTTPRequest, _ body: ByteBuffer?) {
        unanswered += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
    }

    private func write(_ answer: APIResponse, startedAt: ContinuousClock.Instant, _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(DibsHTTPServer.head(answer))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        service.metrics.claimAnsweredOnEventLoop()
        service.metrics.request(route: Routes.claim.path, status: answer.status, took: .now - startedAt)
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

    /// The request as the service reads it.
    static func apiRequest(_ head: HTTPRequest, body: ByteBuffer?, remoteAddress: SocketAddress?) -> APIRequest {
        let headers = DibsHTTPServer.RequestHeaders(head.headerFields)
        return APIRequest(
            method: .post, path: head.path ?? "", authorization: headers.authorization,
            idempotencyKey: headers.idempotencyKey, contentType: headers.contentType,
            clientIP: DibsHTTPServer.clientIP(remoteAddress), body: body.map { Array($0.readableBytesView) } ?? [])
    }
}
