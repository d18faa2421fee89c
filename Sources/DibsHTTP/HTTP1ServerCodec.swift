import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// NIO's `HTTP1ToHTTPServerCodec` (HTTP/1 parts to and from HTTPTypes), but a request target
/// in origin form (`/v1/...`, as every client of Dibs sends) is taken as the path as it is.
/// The stock conversion parses every target with `URLComponents` to find an absolute form,
/// which cost a sold-out answer 2 % of its CPU; the path it gives for an origin-form target is
/// that same string, so only other targets take that way here. And a request that ends its
/// connection (HTTP/1.0 without `keep-alive`) says `Connection: close` (see `request`).
final class HTTP1ServerCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            do {
                context.fireChannelRead(wrapInboundOut(.head(try Self.request(head))))
            } catch {
                context.fireErrorCaught(error)
            }
        case .body(let body):
            context.fireChannelRead(wrapInboundOut(.body(body)))
        case .end(let trailers):
            context.fireChannelRead(wrapInboundOut(.end(trailers.map { HTTPFields($0, splitCookie: false) })))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            context.write(wrapOutboundOut(.head(HTTPResponseHead(response))), promise: promise)
        case .body(let body):
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: promise)
        case .end(let trailers):
            context.write(wrapOutboundOut(.end(trailers.map(HTTPHeaders.init))), promise: promise)
        }
    }

    /// The request as `HTTPRequest(head, secure: false, splitCookie: false)` makes it, except
    /// that a request that does not keep the connection alive says `Connection: close`.
    /// HTTPTypes has no version, so an HTTP/1.0 request without `keep-alive` (whose connection
    /// ends after the answer) would otherwise look kept alive, and the server, which closes
    /// only after `close`, kept the client waiting for the end of the connection.
    static func request(_ head: HTTPRequestHead) throws -> HTTPRequest {
        var request =
            head.uri.utf8.first == UInt8(ascii: "/")
            ? HTTPRequest(
                method: try HTTPRequest.Method(head.method), scheme: "http", authority: head.headers["Host"].first,
                path: head.uri, headerFields: HTTPFields(head.headers, splitCookie: false))
            : try HTTPRequest(head, secure: false, splitCookie: false)
        if !head.isKeepAlive { request.headerFields[.connection] = "close" }
        return request
    }
}
