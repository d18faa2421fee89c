import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1.1 child channel (`HTTP1Channel`) with handlers of ours where
/// `HTTP1Channel.Configuration.additionalChannelHandlers` cannot go: one after the
/// connection-state handler (there the state handler sees the requests it answers, so idle
/// timeouts and graceful shutdown treat them like any other) and `RequestBodyDeadlineHandler`
/// next to it; `UnreadableRequestHandler` before them, next to the HTTP/1 codec whose errors
/// it answers; and `ExpectContinueHandler` before that codec's conversion to HTTPTypes,
/// where a request's version is still known.
struct DibsHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    /// Counts the answers `UnreadableRequestHandler` gives (the router's are counted as it times them).
    private let metrics: DibsMetrics
    /// Closes connections left idle or part-way through a request (`ServiceSettings.idleTimeout`).
    private let idleTimeout: Duration?
    private let lastHandler: @Sendable () -> any RemovableChannelHandler

    init(
        responder: @escaping HTTPChannelHandler.Responder, metrics: DibsMetrics, idleTimeout: Duration?,
        lastHandler: @escaping @Sendable () -> any RemovableChannelHandler
    ) {
        self.responder = responder
        self.metrics = metrics
        self.idleTimeout = idleTimeout
        self.lastHandler = lastHandler
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // As HTTP1Channel.setup with its default configuration.
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: .init())
            // Ours: `Expect: 100-continue` answered, where the request's version is known.
            try channel.pipeline.syncOperations.addHandler(ExpectContinueHandler())
            // NIO's HTTP1ToHTTPServerCodec(secure: false), with origin-form targets taken as they are.
            try channel.pipeline.syncOperations.addHandler(HTTP1ServerCodec())
            // Ours: a request that is not HTTP/1.1 gets a problem, not an empty 400.
            try channel.pipeline.syncOperations.addHandler(UnreadableRequestHandler(metrics: metrics))
            try channel.pipeline.syncOperations.addHandler(
                HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            // Ours: the idle timeout bounds a body too, which the state handler's does not.
            if let idleTimeout {
                try channel.pipeline.syncOperations.addHandler(RequestBodyDeadlineHandler(limit: idleTimeout))
            }
            try channel.pipeline.syncOperations.addHandler(lastHandler())
            return try NIOAsyncChannel(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}
