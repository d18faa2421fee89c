public import Logging
public import PostgresNIO

extension PostgresClient {
    /// Runs a client for the length of `body`: a `PostgresClient` only hands out connections
    /// while its `run()` is going. For commands and tests; the server runs it in its
    /// `ServiceGroup` instead.
    public static func withRunning<Result: Sendable>(
        _ url: PostgresURL,
        maximumConnections: Int = 20,
        logger: Logger,
        _ body: @Sendable (PostgresClient) async throws -> Result
    ) async throws -> Result {
        var configuration = url.clientConfiguration()
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        // The pool warns when a lease races its own start-up; only errors are worth a line.
        var background = logger
        background.logLevel = .error
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}
