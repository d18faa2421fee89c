import DibsCore

/// An answer before it becomes an HTTP response: what the idempotency store keeps.
struct APIResponse: Sendable {
    let status: Int
    let body: [UInt8]
    let contentType: ContentType
    let retryAfter: Duration?
    /// Whether this replays an answer kept for the Idempotency-Key.
    var replayed = false
    /// What a claim's answer counts as in the metrics: `held`, `waitlisted`, a problem's name.
    var outcome: String?

    enum ContentType: Sendable { case json, problem, text, yaml }

    static func json(_ status: Int, _ body: [UInt8]) -> APIResponse {
        APIResponse(status: status, body: body, contentType: .json, retryAfter: nil)
    }

    init(status: Int, body: [UInt8], contentType: ContentType, retryAfter: Duration?) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.retryAfter = retryAfter
    }

    init(_ problem: Problem) {
        self.init(
            status: problem.kind.status, body: problem.body, contentType: .problem, retryAfter: problem.retryAfter)
        outcome = problem.kind.name
    }

    /// A kept answer replayed: problems are recognised by their body.
    init(replaying record: IdempotencyRecord) {
        let isProblem = record.status >= 400
        self.init(
            status: record.status, body: record.body, contentType: isProblem ? .problem : .json, retryAfter: nil)
        replayed = true
    }
}
