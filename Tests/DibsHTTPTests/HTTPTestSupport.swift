import DibsCore
import DibsHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
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
        clock: ManualClock = ManualClock(start: SystemClock().now())
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
            idempotency: MemoryIdempotencyStore(clock: clock), limiter: InProcessRateLimiter(clock: clock),
            settings: settings, metrics: DibsMetrics(), clock: clock, logger: Logger(label: "test"))
    }

    /// Runs `body` against the router through Hummingbird's test client.
    func test(_ body: @Sendable (API) async throws -> Void) async throws {
        let app = Application(router: DibsHTTPServer.router(service: service, settings: settings))
        let op = operatorKey
        let sf = storefrontKey
        try await app.test(.router) { client in
            try await body(
                API(operatorKey: op, storefrontKey: sf) { method, path, headers, bytes in
                    let response = try await client.execute(
                        uri: path, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
                    return Reply(
                        status: Int(response.status.code), headers: response.headers,
                        text: String(buffer: response.body))
                })
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

/// Checks every reply against what the API promises for its route (see `ResponseContract`).
enum ResponseContract {
    static func check(method: String, path: String, reply: Reply) throws {
        if reply.status >= 400, reply.headers[.contentType] == "application/problem+json" {
            guard let type = reply.json["type"] as? String, type.hasPrefix("urn:dibs:problem:"),
                reply.int("status") == reply.status, reply.json["title"] is String, reply.json["detail"] is String
            else { throw ContractFailure("\(method) \(path): a malformed problem: \(reply.text)") }
        }
    }
}

struct ContractFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
