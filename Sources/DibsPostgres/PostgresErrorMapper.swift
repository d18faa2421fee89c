import DibsCore
import PostgresNIO

/// Turns what PostgresNIO throws into a `DibsError` a caller can act on: the server is
/// unavailable (retry later), a statement timed out (outcome unknown), or a bug.
struct PostgresErrorMapper: Sendable {
    let server: String

    func mapping<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as DibsError {
            throw error
        } catch let error as PSQLError {
            throw map(error)
        } catch let error as PostgresTransactionError {
            if let inner = error.closureError as? DibsError { throw inner }
            if let inner = (error.closureError ?? error.beginError ?? error.commitError) as? PSQLError {
                throw map(inner)
            }
            throw DibsError(.storeUnavailable, "\(server) is unavailable: \(error)")
        } catch is CancellationError {
            throw DibsError(.timeout, "the call to \(server) was cancelled before it answered")
        } catch {
            throw DibsError(.storeUnavailable, "\(server) is unavailable: \(error)")
        }
    }

    func map(_ error: PSQLError) -> DibsError {
        if let state = error.serverInfo?[.sqlState] {
            let message = error.serverInfo?[.message] ?? ""
            switch state {
            case "57014":
                return DibsError(
                    .timeout, "\(server) cancelled a statement that ran past statement_timeout: \(message)")
            case "57P01", "57P02", "57P03", "08000", "08003", "08006", "53300":
                return DibsError(.storeUnavailable, "\(server) is unavailable (\(state)): \(message)")
            case "40P01", "40001":
                return DibsError(
                    .storeUnavailable, "\(server) aborted the call to break a lock cycle; retry it: \(message)")
            default:
                return DibsError(.internalError, "\(server) refused a statement (\(state)): \(message)")
            }
        }
        switch error.code {
        case .serverClosedConnection, .connectionError, .uncleanShutdown, .clientClosedConnection:
            return DibsError(.storeUnavailable, "\(server) is unavailable: the connection failed (\(error.code))")
        default:
            return DibsError(
                .storeUnavailable, "\(server) is unavailable: \(error.code) \(error.underlying.map { "\($0)" } ?? "")")
        }
    }
}
