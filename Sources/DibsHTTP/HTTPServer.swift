import DibsCore
import Foundation
import HTTPTypes
public import Hummingbird
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTP1

/// The request context: Hummingbird's, plus the client's address for per-IP rate limits.
public struct DibsRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Builds the Hummingbird router and application for a `DibsService`.
public enum DibsHTTPServer {
    /// The router with every route of `Routes.all`, behind the problem-and-metrics middleware.
    public static func router(service: DibsService, settings: ServiceSettings) -> Router<DibsRequestContext> {
        let router = Router(context: DibsRequestContext.self)
        router.add(middleware: ProblemMiddleware(metrics: service.metrics))
        let openAPI = ByteBuffer(bytes: OpenAPIDocument.bytes)
        let limit = settings.maximumBodyBytes

        func on(
            _ route: Routes.Route,
            _ handle: @escaping @Sendable (APIRequest, Parameters) async -> APIResponse
        ) {
            let method = HTTPRequest.Method(rawValue: route.method)!
            router.on(RouterPath(Routes.hummingbirdPath(route)), method: method) { request, context in
                let api = try await read(request, context, limit: limit)
                return response(await handle(api, context.parameters))
            }
        }

        on(Routes.claim) { await service.claim($0, drop: $1.get("drop") ?? "") }
        on(Routes.claimStatus) { await service.status($0, claim: $1.get("claim") ?? "") }
        on(Routes.confirm) { await service.confirm($0, claim: $1.get("claim") ?? "") }
        on(Routes.release) { await service.release($0, claim: $1.get("claim") ?? "") }
        on(Routes.getDrop) { await service.getDrop($0, drop: $1.get("drop") ?? "") }
        on(Routes.createDrop) { request, _ in await service.createDrop(request) }
        on(Routes.openDrop) { await service.changeDrop($0, drop: $1.get("drop") ?? "", .open) }
        on(Routes.closeDrop) { await service.changeDrop($0, drop: $1.get("drop") ?? "", .close) }
        on(Routes.cancelDrop) { await service.changeDrop($0, drop: $1.get("drop") ?? "", .cancel) }
        on(Routes.readiness) { _, _ in await service.ready() }
        router.get(RouterPath(Routes.health.path)) { _, _ in
            response(.json(200, Array(#"{"status":"ok"}"#.utf8)))
        }
        router.get(RouterPath(Routes.metrics.path)) { _, _ in
            response(
                APIResponse(status: 200, body: service.metrics.exposition(), contentType: .text, retryAfter: nil))
        }
        router.get(RouterPath(Routes.openAPI.path)) { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml"], body: ResponseBody(byteBuffer: openAPI))
        }
        return router
    }

    /// The `Server` header of every answer.
    public static let serverName = "dibs"

    /// HTTP/1.1 as Hummingbird serves it, with claims answered on the event loop that read
    /// them when nothing but the store needs I/O (`ClaimChannelHandler`).
    public static func server(service: DibsService, settings: ServiceSettings) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            DibsHTTP1Channel(responder: responder, metrics: service.metrics, idleTimeout: settings.idleTimeout) {
                ClaimChannelHandler(service: service, maximumBodyBytes: settings.maximumBodyBytes)
            }
        }
    }

    /// The application on `host:port`, ready to run in a `ServiceGroup`.
    public static func application(
        service: DibsService, settings: ServiceSettings, host: String, port: Int, logger: Logger
    ) -> some ApplicationProtocol {
        Application(
            router: router(service: service, settings: settings), server: server(service: service, settings: settings),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: serverName),
            logger: logger)
    }

    /// Reads what the service needs from a Hummingbird request, collecting a POST's body up
    /// to `limit` bytes.
    static func read(_ request: Request, _ context: DibsRequestContext, limit: Int) async throws -> APIRequest {
        var body: [UInt8] = []
        if request.method == .post {
            if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
                throw Problem(.payloadTooLarge, "the body is \(length) bytes; the limit is \(limit)")
            }
            do {
                let buffer = try await request.body.collect(upTo: limit)
                body = Array(buffer.readableBytesView)
            } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
                throw Problem(.payloadTooLarge, "the body is over the limit of \(limit) bytes")
            } catch let error as HTTPParserError {
                // The body went wrong mid-request (a bad chunk): a client's fault, not a 500.
                throw UnreadableRequestHandler.problem(error)
            }
        }
        let headers = RequestHeaders(request.headers)
        return APIRequest(
            method: request.method == .post ? .post : .get, path: request.uri.path,
            authorization: headers.authorization, idempotencyKey: headers.idempotencyKey,
            contentType: headers.contentType, clientIP: clientIP(context.remoteAddress), body: body)
    }

    /// The headers the service reads, found in one pass over the fields (a lookup by name
    /// walks them all, and joins repeated ones, each time). A header sent twice is joined as
    /// the lookup joins it.
    struct RequestHeaders {
        var authorization: String?
        var idempotencyKey: String?
        var contentType: String?

        init(_ fields: HTTPFields) {
            func joined(_ kept: String?, _ value: String) -> String { kept.map { $0 + ", " + value } ?? value }
            for field in fields {
                switch field.name {
                case .authorization: authorization = joined(authorization, field.value)
                case DibsHTTPServer.idempotencyKeyField: idempotencyKey = joined(idempotencyKey, field.value)
                case .contentType: contentType = joined(contentType, field.value)
                default: continue
                }
            }
        }
    }

    /// The client's address as the per-address rate limit names it.
    static func clientIP(_ address: SocketAddress?) -> String {
        switch address {
        case .v4(let address): address.host
        case .v6(let address): address.host
        default: "local"
        }
    }

    static let idempotencyKeyField = HTTPField.Name("Idempotency-Key")!
    static let replayedField = HTTPField.Name("Idempotent-Replayed")!

    static func response(_ answer: APIResponse) -> Response {
        Response(
            status: HTTPResponse.Status(code: answer.status), headers: headers(answer),
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    /// The head of an answer written by a channel handler, not the router: its headers and
    /// the three the router's response writer adds (`Content-Length`, `Date`, `Server`).
    static func head(_ answer: APIResponse) -> HTTPResponse {
        var head = HTTPResponse(status: HTTPResponse.Status(code: answer.status), headerFields: headers(answer))
        head.headerFields[.contentLength] = String(answer.body.count)
        head.headerFields[.date] = HTTPDate.now()
        head.headerFields[.server] = serverName
        return head
    }

    /// An answer's headers but `Content-Length` (the body's writer sets it), `Date` and `Server`.
    static func headers(_ answer: APIResponse) -> HTTPFields {
        var headers = HTTPFields()
        switch answer.contentType {
        case .json: headers[.contentType] = "application/json"
        case .problem: headers[.contentType] = "application/problem+json"
        case .text: headers[.contentType] = "text/plain; version=0.0.4"
        case .yaml: headers[.contentType] = "application/yaml"
        }
        if let wait = answer.retryAfter {
            let seconds = max(1, (wait.wholeMilliseconds + 999) / 1000)
            headers[.retryAfter] = String(seconds)
        }
        if answer.status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        if answer.replayed { headers[replayedField] = "true" }
        return headers
    }
}

/// Answers every failure as `application/problem+json` (an unknown path, a wrong method, a
/// body over the limit, anything unexpected) and times every request for the metrics.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = DibsRequestContext
    let metrics: DibsMetrics

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var result: Response
        do {
            result = try await next(request, context)
        } catch let problem as Problem {
            result = DibsHTTPServer.response(APIResponse(problem))
            // A body that could not be read leaves nothing to read the next request from.
            if problem.kind == .malformedRequest { result.headers[.connection] = "close" }
        } catch let error as any HTTPResponseError {
            result = DibsHTTPServer.response(APIResponse(Self.problem(for: error.status, request)))
            if error.status == .notFound {
                let allowed = Routes.methods(at: request.uri.path)
                if !allowed.isEmpty { result.headers[.allow] = allowed.joined(separator: ", ") }
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)"])
            result = DibsHTTPServer.response(APIResponse(Problem(.internalError, "the server failed unexpectedly")))
        }
        metrics.request(route: context.endpointPath ?? "unmatched", status: result.status.code, took: .now - start)
        return result
    }

    static func problem(for status: HTTPResponse.Status, _ request: Request) -> Problem {
        switch status {
        case .notFound:
            if !Routes.methods(at: request.uri.path).isEmpty {
                return Problem(.methodNotAllowed, "\(request.method) is not served at \(request.uri.path)")
            }
            return Problem(.notFound, "nothing is served at \(request.uri.path)")
        case .contentTooLarge: return Problem(.payloadTooLarge, "the body is too large")
        case .badRequest: return Problem(.invalidHeader, "the request is malformed")
        default: return Problem(.internalError, "HTTP \(status.code)")
        }
    }
}
