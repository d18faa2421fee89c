import Foundation
import HTTPTypes
import Hummingbird
import OpenAPIHummingbird
import OpenAPIRuntime

/// The claim operation answering "sold out", two ways: from handlers generated from
/// openapi.yaml (Codable bodies, OpenAPIRuntime), and hand-written as dibs serve does it
/// (strict flat-JSON reader, field-by-field writer). Neither checks keys nor calls a store:
/// only what differs between the two is measured.
struct Generated: APIProtocol {
    func createClaim(_ input: Operations.createClaim.Input) async throws -> Operations.createClaim.Output {
        guard case .json(let request) = input.body, !request.user.isEmpty, request.user.count <= 128 else {
            return .badRequest(
                .init(
                    body: .application_problem_plus_json(
                        .init(
                            value1: .init(
                                _type: .urn_colon_dibs_colon_problem_colon_invalid_hyphen_field, title: "A field is missing",
                                status: 400, detail: "user"), value2: .init()))))
        }
        return .conflict(
            .init(
                body: .application_problem_plus_json(
                    .init(
                        value1: .init(
                            _type: .urn_colon_dibs_colon_problem_colon_sold_hyphen_out, title: "Sold out", status: 409,
                            detail: "every unit of \(input.path.drop) is held, sold or waited for"),
                        value2: .init()))))
    }
    func getClaim(_ input: Operations.getClaim.Input) async throws -> Operations.getClaim.Output { .undocumented(statusCode: 501, .init()) }
    func confirmClaim(_ input: Operations.confirmClaim.Input) async throws -> Operations.confirmClaim.Output { .undocumented(statusCode: 501, .init()) }
    func releaseClaim(_ input: Operations.releaseClaim.Input) async throws -> Operations.releaseClaim.Output { .undocumented(statusCode: 501, .init()) }
    func getDrop(_ input: Operations.getDrop.Input) async throws -> Operations.getDrop.Output { .undocumented(statusCode: 501, .init()) }
    func createDrop(_ input: Operations.createDrop.Input) async throws -> Operations.createDrop.Output { .undocumented(statusCode: 501, .init()) }
    func openDrop(_ input: Operations.openDrop.Input) async throws -> Operations.openDrop.Output { .undocumented(statusCode: 501, .init()) }
    func closeDrop(_ input: Operations.closeDrop.Input) async throws -> Operations.closeDrop.Output { .undocumented(statusCode: 501, .init()) }
    func cancelDrop(_ input: Operations.cancelDrop.Input) async throws -> Operations.cancelDrop.Output { .undocumented(statusCode: 501, .init()) }
    func getOpenAPIDocument(_ input: Operations.getOpenAPIDocument.Input) async throws -> Operations.getOpenAPIDocument.Output { .undocumented(statusCode: 501, .init()) }
    func getHealth(_ input: Operations.getHealth.Input) async throws -> Operations.getHealth.Output { .undocumented(statusCode: 501, .init()) }
    func getReadiness(_ input: Operations.getReadiness.Input) async throws -> Operations.getReadiness.Output { .undocumented(statusCode: 501, .init()) }
    func getMetrics(_ input: Operations.getMetrics.Input) async throws -> Operations.getMetrics.Output { .undocumented(statusCode: 501, .init()) }
}

let mode = CommandLine.arguments.dropFirst().first ?? "generated"
let port = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 18200
let router = Router()
if mode == "generated" {
    try Generated().registerHandlers(on: router)
} else {
    let keyField = HTTPField.Name("Idempotency-Key")!
    router.post("/v1/drops/:drop/claims") { request, context -> Response in
        guard request.headers[keyField] != nil else { return Response(status: .badRequest) }
        let body = try await request.body.collect(upTo: 4096)
        var fields = try JSONFields(parsing: Array(body.readableBytesView))
        _ = try fields.requiredString("user", maxLength: 512)
        try fields.finish()
        var json = JSONWriter()
        json.field("type", "urn:dibs:problem:sold-out")
        json.field("title", "Sold out")
        json.field("status", 409)
        json.field("detail", "every unit of \(context.parameters.get("drop") ?? "") is held, sold or waited for")
        return Response(
            status: .conflict, headers: [.contentType: "application/problem+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: json.finish())))
    }
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
print("\(mode) listening on \(port)")
try await app.runService()
