/// Every route the server answers, in one list: the router is built from it and the
/// OpenAPI drift test reads it. Paths use the OpenAPI template syntax (`{drop}`).
public enum Routes {
    public struct Route: Sendable, Hashable {
        public let method: String
        public let path: String
        /// The OpenAPI `operationId`, which also names the route in metrics.
        public let operation: String
    }

    public static let claim = Route(method: "POST", path: "/v1/drops/{drop}/claims", operation: "createClaim")
    public static let claimStatus = Route(method: "GET", path: "/v1/claims/{claim}", operation: "getClaim")
    public static let confirm = Route(method: "POST", path: "/v1/claims/{claim}/confirm", operation: "confirmClaim")
    public static let release = Route(method: "POST", path: "/v1/claims/{claim}/release", operation: "releaseClaim")
    public static let getDrop = Route(method: "GET", path: "/v1/drops/{drop}", operation: "getDrop")
    public static let createDrop = Route(method: "POST", path: "/v1/admin/drops", operation: "createDrop")
    public static let openDrop = Route(method: "POST", path: "/v1/admin/drops/{drop}/open", operation: "openDrop")
    public static let closeDrop = Route(method: "POST", path: "/v1/admin/drops/{drop}/close", operation: "closeDrop")
    public static let cancelDrop = Route(method: "POST", path: "/v1/admin/drops/{drop}/cancel", operation: "cancelDrop")
    public static let openAPI = Route(method: "GET", path: "/v1/openapi.yaml", operation: "getOpenAPIDocument")
    public static let health = Route(method: "GET", path: "/healthz", operation: "getHealth")
    public static let readiness = Route(method: "GET", path: "/readyz", operation: "getReadiness")
    public static let metrics = Route(method: "GET", path: "/metrics", operation: "getMetrics")

    public static let all: [Route] = [
        claim, claimStatus, confirm, release, getDrop, createDrop, openDrop, closeDrop, cancelDrop, openAPI, health,
        readiness, metrics,
    ]

    /// The route template as Hummingbird writes it (`:drop`).
    static func hummingbirdPath(_ route: Route) -> String {
        route.path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
    }

    /// The methods served at a concrete path, for a `405` with `Allow`.
    static func methods(at path: String) -> [String] {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        return all.filter { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false)
            return template.count == parts.count
                && zip(template, parts).allSatisfy { t, p in (t.hasPrefix("{") && !p.isEmpty) || t == p }
        }.map(\.method)
    }
}
