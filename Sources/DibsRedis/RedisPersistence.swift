/// Whether Redis keeps what Dibs writes through a restart. A Redis drop's settings, holds,
/// line and claims live only in Redis (sales go to Postgres, and nothing rebuilds a drop from
/// Postgres yet), so a Redis that writes no append-only file loses every Redis drop when it
/// restarts, and one that fsyncs that file less often than on every write can lose the last
/// writes when its machine goes down — units then handed to a second shopper while the first
/// still holds a token. `dibs serve` says so at start (`dibs-load`'s own Redis, for its
/// restart fault, runs with `appendonly yes` and `appendfsync always`).
public enum RedisPersistence: Sendable, Equatable {
    /// An append-only file, fsynced on every write.
    case durable
    /// What a restart (or a crash of Redis's machine) would lose, for the operator.
    case atRisk(String)
    /// The settings could not be read (Redis down, or `CONFIG` refused, as managed Redis
    /// services do).
    case unknown(String)

    /// Reads `appendonly` and `appendfsync` from the server.
    public static func check(_ client: RedisClient) async -> RedisPersistence {
        do {
            let appendOnly = try await setting("appendonly", client)
            guard appendOnly == "yes" else {
                return .atRisk(
                    "Redis writes no append-only file (appendonly \(appendOnly)): if it restarts, every Redis drop is "
                        + "lost, its holds, line and claims (sales stay in Postgres); run it with appendonly yes and "
                        + "appendfsync always")
            }
            let fsync = try await setting("appendfsync", client)
            guard fsync == "always" else {
                return .atRisk(
                    "Redis fsyncs its append-only file \(fsync), not on every write: if its machine goes down, the "
                        + "last claims can be lost and their units handed to other shoppers; run it with appendfsync "
                        + "always")
            }
            return .durable
        } catch {
            return .unknown(
                "could not read Redis's persistence settings (\(error)): run it with appendonly yes and appendfsync "
                    + "always, or a restart loses the Redis drops")
        }
    }

    private static func setting(_ name: String, _ client: RedisClient) async throws -> String {
        let reply = try await client.send(["CONFIG", "GET", name])
        if case .error(let message) = reply { throw ConfigRefused(message: message) }
        guard case .array(let pair) = reply, pair.count == 2, let value = pair[1].text else {
            throw ConfigRefused(message: "CONFIG GET \(name) answered \(reply)")
        }
        return value
    }

    private struct ConfigRefused: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}
