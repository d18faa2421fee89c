import DibsCore
import DibsHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import OpenAPIKit
import XCTest

/// A memory-backed server for the HTTP tests, on a clock the test moves by hand.
struct TestServer {
    let clock: ManualClock
    let operatorKey: String
    let storefrontKey: String
    let service: DibsService
    let settings: ServiceSettings
    let keys: MemoryAPIKeyStore
    let storefrontKeyID: String

    init(
        settings adjust: (inout ServiceSettings) -> Void = { _ in }, store: (any LeaseStore)? = nil,
        idempotency: (any IdempotencyStore)? = nil, clock: ManualClock = ManualClock(start: SystemClock().now())
    ) throws {
        self.clock = clock
        var settings = ServiceSettings(defaultBackend: "memory")
        settings.perShopperLimit = nil
        settings.perIPLimit = nil
        adjust(&settings)
        self.settings = settings
        let keys = MemoryAPIKeyStore()
        self.keys = keys
        let op = APIKey.generate()
        let sf = APIKey.generate()
        try keys.insert(op.record(name: "ops", scope: .operator, createdAt: clock.now()))
        try keys.insert(sf.record(name: "shop", scope: .storefront, createdAt: clock.now()))
        operatorKey = op.text
        storefrontKey = sf.text
        storefrontKeyID = sf.id
        service = DibsService(
            stores: [store ?? MemoryLeaseStore(clock: clock)], directory: MemoryDropDirectory(), keys: keys,
            idempotency: idempotency ?? MemoryIdempotencyStore(clock: clock),
            limiter: InProcessRateLimiter(clock: clock),
            settings: settings, metrics: DibsMetrics(), clock: clock, logger: Logger(label: "test"))
    }

    /// Runs `body` against the router through Hummingbird's test client.
    func test(_ body: @Sendable (API) async throws -> Void) async throws {
        try await test(live: false) { api, _ in try await body(api) }
    }

    /// Runs `body` against the router, or with `live` against the whole server (its channel
    /// handlers too) on a loopback port, which `body` gets.
    func test(live: Bool, _ body: @Sendable (API, Int?) async throws -> Void) async throws {
        let app = Application(
            router: DibsHTTPServer.router(service: service, settings: settings),
            server: DibsHTTPServer.server(service: service, settings: settings),
            configuration: ApplicationConfiguration(
                address: .hostname("127.0.0.1", port: 0), serverName: DibsHTTPServer.serverName))
        let op = operatorKey
        let sf = storefrontKey
        try await app.test(live ? .live : .router) { client in
            try await body(
                API(operatorKey: op, storefrontKey: sf) { method, path, headers, bytes in
                    let response = try await client.execute(
                        uri: path, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
                    return Reply(
                        status: Int(response.status.code), headers: response.headers,
                        text: String(buffer: response.body))
                }, client.port)
        }
    }
}

/// A response, with its body parsed when it is JSON.
struct Reply: Sendable {
    let status: Int
    let headers: HTTPFields
    let text: String

    var json: [String: Any] {
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object
    }

    /// The problem's name (`sold-out` for `urn:dibs:problem:sold-out`), if this is a problem.
    var problem: String? {
        guard headers[.contentType] == "application/problem+json", let type = json["type"] as? String else {
            return nil
        }
        return type.hasPrefix("urn:dibs:problem:") ? String(type.dropFirst(17)) : type
    }

    func string(_ field: String) -> String? { json[field] as? String }
    func int(_ field: String) -> Int? { (json[field] as? NSNumber)?.intValue }
}

/// Calls the API the way a storefront or an operator would.
struct API: Sendable {
    let operatorKey: String
    let storefrontKey: String
    /// Sends one request: through the router in memory, or over a socket.
    let send: @Sendable (HTTPRequest.Method, String, HTTPFields, [UInt8]?) async throws -> Reply

    enum Key { case `operator`, storefront, none, raw(String) }

    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, key: Key = .storefront, idempotencyKey: String? = nil,
        body: String? = nil, contentType: String? = "application/json", headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        switch key {
        case .operator: headers[.authorization] = "Bearer \(operatorKey)"
        case .storefront: headers[.authorization] = "Bearer \(storefrontKey)"
        case .raw(let value): headers[.authorization] = value
        case .none: break
        }
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        if body != nil, let contentType { headers[.contentType] = contentType }
        let reply = try await send(method, path, headers, body.map { Array($0.utf8) })
        try ResponseContract.check(method: method.rawValue, path: path, reply: reply)
        return reply
    }

    /// The server's count of claims answered on the event loop (from `/metrics`).
    func claimsAnsweredOnEventLoop() async throws -> Int {
        let metrics = try await call(.get, "/metrics", key: .none).text
        let line = try XCTUnwrap(
            metrics.split(separator: "\n").first { $0.hasPrefix("dibs_claims_answered_on_event_loop_total ") })
        return try XCTUnwrap(Int(line.split(separator: " ").last ?? ""))
    }

    @discardableResult
    func createDrop(_ id: String, units: Int, extra: String = "") async throws -> Reply {
        try await call(
            .post, "/v1/admin/drops", key: .operator, idempotencyKey: "create-\(id)",
            body: #"{"id":"\#(id)","units":\#(units)\#(extra)}"#)
    }

    @discardableResult
    func claim(_ drop: String, user: String, key: String? = nil) async throws -> Reply {
        try await call(
            .post, "/v1/drops/\(drop)/claims", idempotencyKey: key ?? "claim-\(drop)-\(user)",
            body: #"{"user":"\#(user)"}"#)
    }
}

/// Checks every reply against the OpenAPI document: the operation must be documented,
/// the status must be one it lists, the content type one that status lists, the body must
/// match that schema, and required headers must be there. A path or method the server does
/// not serve must be answered with a well-formed problem.
enum ResponseContract {
    static func check(method: String, path: String, reply: Reply) throws {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard let (template, found) = OpenAPIContract.operation(method: method, path: bare), let operation = found
        else {
            guard [404, 405].contains(reply.status) else {
                throw ContractFailure("\(method) \(path) is not in the document but answered \(reply.status)")
            }
            return try checkBody(reply, against: problemSchema, "\(method) \(path)")
        }
        let what = "\(method) \(template) → \(reply.status)"
        guard let response = operation.responses.first(where: { $0.key.rawValue == String(reply.status) })?.value
        else { throw ContractFailure("\(what): the status is not documented for this operation: \(reply.text)") }
        for (name, header) in response.headers ?? [:] where header.required {
            guard reply.headers[HTTPField.Name(name)!] != nil else {
                throw ContractFailure("\(what): the required header \(name) is missing")
            }
        }
        let mediaType = reply.headers[.contentType]?.split(separator: ";").first.map(String.init) ?? ""
        guard let content = response.content.first(where: { $0.key.rawValue == mediaType })?.value else {
            throw ContractFailure("\(what): content type \(mediaType) is not documented")
        }
        if mediaType.hasSuffix("json"), let schema = content.schema { try checkBody(reply, against: schema, what) }
    }

    static let problemSchema: DereferencedJSONSchema = {
        guard let schema = OpenAPIContract.dereferenced.components.schemas["Problem"] else {
            fatalError("the document has no Problem schema")
        }
        return try! schema.dereferenced(in: OpenAPIContract.document.components)
    }()

    static func checkBody(_ reply: Reply, against schema: DereferencedJSONSchema, _ what: String) throws {
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(reply.text.utf8)) } catch {
            throw ContractFailure("\(what): the body is not JSON: \(reply.text)")
        }
        let problems = SchemaCheck.problems(value, schema)
        guard problems.isEmpty else {
            throw ContractFailure(
                "\(what): the body breaks the schema: \(problems.joined(separator: "; ")) in \(reply.text)")
        }
    }
}

struct ContractFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Requests written at once, as bytes, on a new connection to a live test server (pipelined,
/// or what no HTTP library would send), read until the server closes it.
enum RawConnection {
    struct NotClosed: Error, CustomStringConvertible {
        let limit: Duration
        var description: String { "the server did not close the connection within \(limit)" }
    }

    /// Writes `requests` at once on a new connection and reads until the server closes it,
    /// failing if it has not within `limit`.
    static func exchange(_ requests: String, port: Int, limit: Duration = .seconds(10)) async throws -> String {
        try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { try await readUntilClosed(requests, port: port) }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let answers = try await group.next() ?? nil else { throw NotClosed(limit: limit) }
            return answers
        }
    }

    /// Writes `head`, then `body` a byte every `interval`, while reading until the server
    /// closes the connection: what it answered, and whether it closed before the last byte.
    static func trickle(
        head: String, body: String, every interval: Duration, port: Int
    ) async throws -> (answers: String, closedPartWay: Bool) {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: head))
            return try await withThrowingTaskGroup(of: Bool?.self) { group in
                group.addTask {
                    for byte in body.utf8 {
                        try await Task.sleep(for: interval)
                        do { try await outbound.write(ByteBuffer(bytes: [byte])) } catch { return nil }
                    }
                    return true
                }
                var text = ""
                for try await chunk in inbound { text += String(buffer: chunk) }
                // Closed while the writer still had bytes to send, unless it had sent them all.
                let sentAll = (try await group.next() ?? nil) ?? false
                return (text, !sentAll)
            }
        }
    }

    private static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    private static func readUntilClosed(_ requests: String, port: Int) async throws -> String {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: requests))
            var text = ""
            for try await chunk in inbound { text += String(buffer: chunk) }
            return text
        }
    }
}
