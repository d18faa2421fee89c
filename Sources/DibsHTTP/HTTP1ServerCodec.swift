import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// NIO's `HTTP1ToHTTPServerCodec` (HTTP/1 parts to and from HTTPTypes) and its
/// `HTTPResponseEncoder` in one: requests come in as NIO's parts and go on as HTTPTypes;
/// answers go out as bytes written straight from HTTPTypes (`HTTP1ResponseBytes`), framed as
/// NIO frames them, and an answer's head waits for its body (or end, or a flush) so the two
/// leave in one buffer, one write. The conversion to NIO's head and NIO's encoder behind it
/// were 7.3 % of `dibs serve`'s samples on the claim path; this is 5.9 %.
///
/// A request target in origin form (`/v1/...`, as every client of Dibs sends) is taken as the
/// path as it is: the stock conversion parses every target with `URLComponents` to find an
/// absolute form, which cost a sold-out answer 2 % of its CPU; the path it gives for an
/// origin-form target is that same string, so only other targets take that way here. And a
/// request that ends its connection (HTTP/1.0 without `keep-alive`) says `Connection: close`
/// (see `request`).
final class HTTP1ServerCodec: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = ByteBuffer

    /// The methods of the requests read and not answered yet, oldest first (nil for one that
    /// HTTPTypes refused): the answer to a `HEAD` has no body.
    private var methods = CircularBuffer<HTTPRequest.Method?>(initialCapacity: 4)
    /// How the body of the answer being written is framed.
    private var framing = HTTP1ResponseBytes.Framing.asIs
    /// An answer's bytes not written yet (its head, and a small body once it came) and the
    /// promise of their writes.
    private var held: (bytes: ByteBuffer, promise: EventLoopPromise<Void>?)?

    /// A body up to this size is copied behind its head; a larger one is written on its own.
    static let bodyBytesJoinedToHead = 16 * 1024

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            do {
                let request = try Self.request(head)
                methods.append(request.method)
                context.fireChannelRead(wrapInboundOut(.head(request)))
            } catch {
                // Its answer (to the error) still takes its place in the queue.
                methods.append(nil)
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
        case .head(var response):
            writeHeld(context)
            // A 1xx other than 101 comes before the request's final answer.
            let informational = (100..<200).contains(response.status.code) && response.status.code != 101
            let method = informational ? nil : methods.popFirst() ?? nil
            framing = HTTP1ResponseBytes.frame(&response, method: method)
            var bytes = context.channel.allocator.buffer(capacity: 256)
            HTTP1ResponseBytes.writeHead(response, into: &bytes)
            held = (bytes, promise)
        case .body(let body):
            switch framing {
            case .none:
                // As NIO's encoder: a body where none may go is refused, not sent.
                promise?.fail(BodyNotAllowed())
            case .chunked:
                // An empty chunk would end the body.
                guard body.readableBytes > 0 else { return keep(promise, context) }
                var bytes = takeHeld(context, capacity: body.readableBytes + 16)
                HTTP1ResponseBytes.writeChunk(body, into: &bytes.bytes)
                held = (bytes.bytes, Self.joined(bytes.promise, promise))
            case .asIs:
                if body.readableBytes <= Self.bodyBytesJoinedToHead, var bytes = held {
                    bytes.bytes.writeImmutableBuffer(body)
                    held = (bytes.bytes, Self.joined(bytes.promise, promise))
                } else {
                    writeHeld(context)
                    context.write(wrapOutboundOut(body), promise: promise)
                }
            }
        case .end(let trailers):
            if framing == .chunked {
                var bytes = takeHeld(context, capacity: 64)
                HTTP1ResponseBytes.writeLastChunk(trailers: trailers, into: &bytes.bytes)
                held = (bytes.bytes, Self.joined(bytes.promise, promise))
                writeHeld(context)
            } else {
                keep(promise, context)
                writeHeld(context)
            }
            framing = .asIs
        }
    }

    func flush(context: ChannelHandlerContext) {
        writeHeld(context)
        context.flush()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if held != nil {
            writeHeld(context)
            context.flush()
        }
        context.close(mode: mode, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held?.promise?.fail(ChannelError.ioOnClosedChannel)
        held = nil
    }

    private func writeHeld(_ context: ChannelHandlerContext) {
        guard let (bytes, promise) = held else { return }
        held = nil
        context.write(wrapOutboundOut(bytes), promise: promise)
    }

    /// The bytes held, or an empty buffer to write into.
    private func takeHeld(
        _ context: ChannelHandlerContext, capacity: Int
    ) -> (bytes: ByteBuffer, promise: EventLoopPromise<Void>?) {
        defer { held = nil }
        return held ?? (context.channel.allocator.buffer(capacity: capacity), nil)
    }

    /// A part with nothing to write: its promise completes in order, with what went before.
    private func keep(_ promise: EventLoopPromise<Void>?, _ context: ChannelHandlerContext) {
        guard let promise else { return }
        if held != nil {
            held!.promise = Self.joined(held!.promise, promise)
        } else {
            context.write(wrapOutboundOut(ByteBuffer()), promise: promise)
        }
    }

    /// One promise for writes that went out together.
    private static func joined(
        _ first: EventLoopPromise<Void>?, _ second: EventLoopPromise<Void>?
    ) -> EventLoopPromise<Void>? {
        guard let first else { return second }
        if let second { first.futureResult.cascade(to: second) }
        return first
    }

    /// A body written for an answer that has none (to `HEAD`, or a 204).
    struct BodyNotAllowed: Error {}

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
