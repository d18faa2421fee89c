public import DibsPostgres
public import Logging
import PostgresNIO

/// The work behind `dibs migrate`: load the migrations and apply the pending ones.
public func migrateDatabase(at url: PostgresURL, schemaDirectory: String, logger: Logger) async throws
    -> MigrationReport
{
    let migrations = try Migration.load(from: schemaDirectory)
    return try await PostgresClient.withRunning(url, maximumConnections: 1, logger: logger) { client in
        try await Migrator(client: client, logger: logger).migrate(migrations)
    }
}
