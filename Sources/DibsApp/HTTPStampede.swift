import DibsClient

/// The demo's stampede over HTTP: a fresh drop created through the operator API, then
/// `claims` shoppers claiming through the storefront API on `connections` keep-alive
/// connections, as a storefront's backend would.
public struct HTTPStampede: Sendable {
    public let host: String
    public let port: Int
    public let operatorKey: String
    public let storefrontKey: String
    public let claims: Int
    public let units: Int
    public let connections: Int

    public init(
        host: String, port: Int, operatorKey: String, storefrontKey: String, claims: Int, units: Int,
        connections: Int
    ) {
        self.host = host
        self.port = port
        self.operatorKey = operatorKey
        self.storefrontKey = storefrontKey
        self.claims = claims
        self.units = units
        self.connections = connections
    }

    /// Creates a fresh drop on `backend` and fires the claims at it.
    public func run(backend: String) async throws -> Stampede.Report {
        let drop = try Stampede.freshDrop().rawValue
        let admin = try await HTTP1Connection.connect(host: host, port: port)
        defer { admin.close() }
        let body = #"{"id":"\#(drop)","units":\#(units),"backend":"\#(backend)"}"#
        let created = try await admin.send(
            "POST", "/v1/admin/drops",
            headers: [
                ("Authorization", "Bearer \(operatorKey)"), ("Idempotency-Key", "demo-\(drop)"),
                ("Content-Type", "application/json"),
            ], body: Array(body.utf8))
        guard created.status == 201 else {
            throw HTTPClientError(
                description:
                    "creating the drop answered \(created.status): \(String(decoding: created.body, as: UTF8.self))"
            )
        }

        let next = TicketCounter()
        let started = ContinuousClock.now
        let answers = try await withThrowingTaskGroup(of: [(Int, Int?)].self) { group in
            for _ in 0..<min(connections, claims) {
                group.addTask {
                    let connection = try await HTTP1Connection.connect(host: host, port: port)
                    defer { connection.close() }
                    var answers: [(Int, Int?)] = []
                    while true {
                        let index = next.take()
                        if index >= claims { return answers }
                        let reply = try await connection.send(
                            "POST", "/v1/drops/\(drop)/claims",
                            headers: [
                                ("Authorization", "Bearer \(storefrontKey)"), ("Idempotency-Key", "\(drop)-k-\(index)"),
                                ("Content-Type", "application/json"),
                            ], body: Array(#"{"user":"shopper-\#(index)"}"#.utf8))
                        answers.append(
                            (
                                reply.status,
                                reply.status == 201 ? ResponseFields(reply.body).integer("unit").map(Int.init) : nil
                            ))
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let elapsed = ContinuousClock.now - started
        let held = answers.compactMap { $0.0 == 201 ? $0.1 : nil }
        let waitlisted = answers.filter { $0.0 == 202 }.count
        let soldOut = answers.filter { $0.0 == 409 }.count
        return Stampede.Report(
            backend: backend, claims: claims, held: held.count, waitlisted: waitlisted, soldOut: soldOut,
            other: claims - held.count - waitlisted - soldOut,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            distinctUnits: Set(held).count, heldUnits: held.sorted())
    }
}
