import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request that is not HTTP/1.1 — a request line or header NIO's parser refuses,
/// both `Content-Length` and `Transfer-Encoding`, headers over the parser's 80 KiB — with a
/// problem like any other (`malformed-request`, or `headers-too-large`, 431) and then closes
/// the connection, where Hummingbird answers an empty `400`. The answer keeps its place: it
/// waits for the answers of the requests read before it. An error in the middle of a
/// request (a bad chunk of a body) goes on to Hummingbird, whose handler may be reading that
/// body and must see it fail (an end would hand it a truncated body); the empty `400`
/// Hummingbird then writes is replaced here by the problem.
///
/// Sits right after `HTTP1ServerCodec`, so it sees every request and answer as they pass.
final class UnreadableRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Requests read whose answer has not been written whole.
    private var unanswered = 0
    /// A request's head was read and its end not yet.
    private var readingRequest = false
    /// The answer for the request that could not be read, once the earlier ones are out.
    private var pending: Problem?
    /// This handler's answer is written and the connection closing: nothing follows it
    /// (the rest of the Hummingbird answer it replaced is dropped).
    private var answered = false
    /// The problem for a request that went wrong mid-body, given in place of Hummingbird's
    /// empty `400` for it.
    private var midRequest: Problem?
    /// Where the answers given here are counted (`dibs_http_responses_total`).
    private let metrics: DibsMetrics

    init(metrics: DibsMetrics) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            unanswered += 1
            readingRequest = true
        case .body: break
        case .end: readingRequest = false
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = unwrapOutboundIn(data)
        if answered { return promise?.succeed() ?? () }
        if let problem = midRequest, case .head(let head) = part, Self.isHummingbirdsParseErrorAnswer(head) {
            answer(problem, context)
            return promise?.succeed() ?? ()
        }
        let isEnd: Bool
        if case .end = part { isEnd = true } else { isEnd = false }
        context.write(data, promise: promise)
        if isEnd {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0, let problem = pending { answer(problem, context) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Once an answer is given or due, complaints about what followed are moot: the
        // connection is closing.
        guard !answered && pending == nil else { return }
        guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
        if readingRequest {
            midRequest = Self.problem(parserError)
            return context.fireErrorCaught(error)
        }
        let problem = Self.problem(parserError)
        if unanswered == 0 { answer(problem, context) } else { pending = problem }
    }

    /// The answer Hummingbird writes when its request stream fails with a parser error: a
    /// `400` with no body and no content type (every answer of Dibs' own has one).
    static func isHummingbirdsParseErrorAnswer(_ head: HTTPResponse) -> Bool {
        head.status == .badRequest && head.headerFields[.contentType] == nil
            && head.headerFields[.contentLength] == "0"
    }

    static func problem(_ error: HTTPParserError) -> Problem {
        if error == .headerOverflow {
            return Problem(.headersTooLarge, "the request's headers are over 80 KiB")
        }
        // llhttp's errors without a name of their own in NIO: a body framed twice, among others.
        let what = error == .unknown ? "its framing or syntax is refused" : error.debugDescription
        return Problem(.malformedRequest, "the request is not valid HTTP/1.1: \(what)")
    }

    private func answer(_ problem: Problem, _ context: ChannelHandlerContext) {
        pending = nil
        answered = true
        let answer = APIResponse(problem)
        metrics.answered(status: answer.status)
        var head = DibsHTTPServer.head(answer)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: answer.body))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
