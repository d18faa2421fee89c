import DibsCore
import DibsHTTP
import HTTPTypes
import Hummingbird
import Logging
import OpenAPIKit
import XCTest

/// The OpenAPI document, the router and the responses stay in step.
final class OpenAPIContractTests: XCTestCase {
    func testTheDocumentIsValidOpenAPI31() throws {
        XCTAssertEqual(OpenAPIContract.document.openAPIVersion, .v3_1_0)
        try OpenAPIContract.document.validate()
    }

    /// Fails when a route the router serves is missing from the document, or a path in the
    /// document is not served: no drift either way.
    func testNoDriftBetweenTheRouterAndTheDocument() throws {
        let server = try TestServer()
        let router = DibsHTTPServer.router(service: server.service, settings: server.settings)
        func normalized(_ path: String) -> String {
            path.split(separator: "/", omittingEmptySubsequences: false).map { part in
                part.hasPrefix(":") ? "{\(part.dropFirst())}" : String(part)
            }.joined(separator: "/")
        }
        let served = Set(router.routes.map { "\($0.method.rawValue) \(normalized($0.path.description))" })
        var documented: Set<String> = []
        var operationIDs: [String: String] = [:]
        for (path, item) in OpenAPIContract.dereferenced.paths {
            for endpoint in item.endpoints {
                let key = "\(endpoint.method.rawValue.uppercased()) \(path.rawValue)"
                documented.insert(key)
                operationIDs[key] = endpoint.operation.operationId
            }
        }
        XCTAssertEqual(served.subtracting(documented), [], "served but not in openapi.yaml")
        XCTAssertEqual(documented.subtracting(served), [], "in openapi.yaml but not served")
        for route in Routes.all {
            XCTAssertEqual(operationIDs["\(route.method) \(route.path)"], route.operation, "\(route.path)")
        }
    }

    func testEveryProblemTypeIsInTheDocument() throws {
        guard case .object(_, let object) = ResponseContract.problemSchema,
            let types = object.properties["type"]?.allowedValues?.compactMap({ $0.value as? String })
        else { return XCTFail("the Problem schema has no enum of types") }
        XCTAssertEqual(Set(types), Set(ProblemKind.all.map(\.type)))
    }

    func testEachOperationNamesTheScopeItNeeds() throws {
        for (path, item) in OpenAPIContract.document.paths {
            for endpoint in item.pathItemValue?.endpoints ?? [] {
                let roles = (endpoint.operation.security ?? OpenAPIContract.document.security).flatMap {
                    $0.values.flatMap { $0 }
                }
                let expected: [String] =
                    path.rawValue.hasPrefix("/v1/admin")
                    ? ["operator"]
                    : path.rawValue.hasPrefix("/v1/drops") || path.rawValue.hasPrefix("/v1/claims")
                        ? ["storefront"] : []
                XCTAssertEqual(roles, expected, "\(endpoint.method) \(path.rawValue)")
            }
        }
    }

    /// The response check itself catches what it is there to catch.
    func testTheResponseCheckCatchesBrokenAnswers() throws {
        func reply(_ status: Int, _ body: String, problem: Bool = false, headers extra: HTTPFields = [:]) -> Reply {
            var headers = extra
            headers[.contentType] = problem ? "application/problem+json" : "application/json"
            return Reply(status: status, headers: headers, text: body)
        }
        let held =
            #"{"claim":"d.1","state":"held","unit":0,"fence":1,"expires_at":"2026-11-27T09:00:00.000Z","hold_token":"00000000000000000000000000000000"}"#
        XCTAssertNoThrow(
            try ResponseContract.check(method: "POST", path: "/v1/drops/d/claims", reply: reply(201, held)))
        let broken: [(String, Reply)] = [
            ("an undocumented status", reply(200, held)),
            ("a missing field", reply(201, #"{"claim":"d.1","state":"held","unit":0,"fence":1,"hold_token":null}"#)),
            ("a wrong type", reply(201, held.replacingOccurrences(of: #""unit":0"#, with: #""unit":"0""#))),
            ("an undeclared field", reply(201, held.replacingOccurrences(of: #""unit":0"#, with: #""unit":0,"x":1"#))),
            ("a bad date", reply(201, held.replacingOccurrences(of: "2026-11-27T09:00:00.000Z", with: "tomorrow"))),
            ("a wrong state", reply(201, held.replacingOccurrences(of: #""held""#, with: #""lost""#))),
            (
                "a problem type this status does not carry",
                reply(
                    409, #"{"type":"urn:dibs:problem:limit-reached","title":"t","status":409,"detail":"d"}"#,
                    problem: true)
            ),
            (
                "a 429 without Retry-After",
                reply(
                    429, #"{"type":"urn:dibs:problem:rate-limited","title":"t","status":429,"detail":"d"}"#,
                    problem: true)
            ),
            ("a problem sent as plain JSON", reply(409, #"{"type":"urn:dibs:problem:sold-out"}"#)),
        ]
        for (what, answer) in broken {
            XCTAssertThrowsError(
                try ResponseContract.check(method: "POST", path: "/v1/drops/d/claims", reply: answer), what)
        }
        XCTAssertThrowsError(
            try ResponseContract.check(method: "GET", path: "/v1/nowhere", reply: reply(200, "{}")),
            "a path the document does not have answered 200")
    }
}
