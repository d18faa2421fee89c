import NIOCore
import NIOHTTP1

/// Answers `Expect: 100-continue` with `100 Continue` (RFC 9110, 10.1.1), so a client that
/// waits for it before sending a body — curl waits a second, some HTTP stacks longer — sends
/// its claim at once. Sent only while every request before it is answered: an interim answer
/// must not overtake their final ones (the client then sends after its own wait).
///
/// Sits between NIO's HTTP/1 codec and `HTTP1ServerCodec`, where the request's version is
/// known (an HTTP/1.0 client gets no `100`).
final class ExpectContinueHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Requests read whose answer has not ended yet.
    private var unanswered = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            if unanswered == 0, head.version == .http1_1, Self.expectsContinue(head.headers) {
                let interim = HTTPResponseHead(version: .http1_1, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
            unanswered += 1
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    static func expectsContinue(_ headers: HTTPHeaders) -> Bool {
        headers.contains(name: "expect")
            && headers["expect"].contains { $0.lowercased() == "100-continue" }
    }
}
