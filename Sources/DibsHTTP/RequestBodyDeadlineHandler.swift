import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes a connection whose request body has not arrived whole within the idle timeout of
/// its head. Hummingbird's idle timeout counts each body part read as activity, so a body
/// sent a byte at a time held its connection for as long as the body cap allowed (days, at
/// a byte a minute); a head sent part-way is already bounded, as the parser keeps it until it
/// is whole and the connection-state handler sees no part of it.
///
/// A claim's head and body arrive in one read, so the timer is set only when a read ends
/// with a request still part-way: the hot path schedules nothing.
final class RequestBodyDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let limit: TimeAmount
    /// A request's head was read and its end not yet.
    private var readingRequest = false
    private var deadline: Scheduled<Void>?

    init(limit: Duration) {
        self.limit = TimeAmount(limit)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: readingRequest = true
        case .body: break
        case .end:
            readingRequest = false
            cancelDeadline()
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if readingRequest, deadline == nil {
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limit) { [context] in
                context.close(promise: nil)
            }
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
    }

    private func cancelDeadline() {
        deadline?.cancel()
        deadline = nil
    }
}
