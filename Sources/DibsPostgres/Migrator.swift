private import Crypto
import DibsCore
import Foundation
public import Logging
public import PostgresNIO

/// One numbered migration file, `NNN_name.sql`.
public struct Migration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let sql: String
    /// SHA-256 of the file, so a change to an applied migration is caught.
    public let checksum: String

    /// Makes a migration from its file name parts and text.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = Hex.encode(SHA256.hash(data: Array(sql.utf8)))
    }

    /// Reads every `NNN_name.sql` of `directory`, in order. Refuses two files with one
    /// number and files whose name does not follow the pattern, so nothing is skipped quietly.
    public static func load(from directory: String) throws -> [Migration] {
        let files: [String]
        do {
            files = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw DibsError(.invalidInput, "cannot read the migrations in \(directory): \(error.localizedDescription)")
        }
        var migrations: [Migration] = []
        for file in files.sorted() where file.hasSuffix(".sql") {
            let stem = file.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]), version > 0 else {
                throw DibsError(.invalidInput, "migration \(file) is not named NNN_name.sql")
            }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            migrations.append(
                Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw DibsError(.invalidInput, "two migrations are numbered \(a.version): \(a.name) and \(b.name)")
        }
        return migrations
    }
}

/// What `Migrator.migrate` did.
public struct MigrationReport: Sendable, Hashable {
    /// Versions applied by this run, in order.
    public let applied: [Int]
    /// Versions that were applied before.
    public let alreadyApplied: [Int]
}

/// Applies pending migrations in order, each in its own transaction, and records each with
/// its checksum in `dibs_schema_migrations`.
///
/// A session advisory lock serializes migrators, so two processes that start at once apply
/// each migration exactly once; the second finds nothing left to do.
public struct Migrator: Sendable {
    /// The advisory lock key: "dibs" in ASCII, so it does not collide with other users' keys.
    static let lockKey: Int64 = 0x6469_6273

    private let client: PostgresClient
    private let logger: Logger

    /// Makes a migrator on a running client.
    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Applies the migrations not yet applied. Throws before changing anything if an
    /// applied migration's file changed, or the database has a migration the files lack.
    public func migrate(_ migrations: [Migration]) async throws -> MigrationReport {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
            do {
                let report = try await apply(migrations, on: connection)
                try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                return report
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
                throw error
            }
        }
    }

    private func apply(_ migrations: [Migration], on connection: PostgresConnection) async throws -> MigrationReport {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS dibs_schema_migrations (
                version int PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        var applied: [Int: (name: String, checksum: String)] = [:]
        for try await (version, name, checksum) in try await connection.query(
            "SELECT version, name, checksum FROM dibs_schema_migrations", logger: logger
        ).decode((Int, String, String).self) {
            applied[version] = (name, checksum)
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, record) in applied.sorted(by: { $0.key < $1.key }) {
            guard let migration = known[version] else {
                throw DibsError(
                    .invalidInput,
                    "the database has migration \(version) (\(record.name)) but no file has it: is this binary older than the database?"
                )
            }
            guard migration.checksum == record.checksum else {
                throw DibsError(
                    .invalidInput,
                    "migration \(version)_\(migration.name).sql changed after it was applied; add a new migration instead"
                )
            }
        }
        var done: [Int] = []
        for migration in migrations where applied[migration.version] == nil {
            logger.info(
                "applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            try await connection.query("BEGIN", logger: logger)
            for statement in SQLScript.statements(migration.sql) {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                } catch let error as PSQLError {
                    throw DibsError(
                        .invalidInput,
                        "migration \(migration.version)_\(migration.name) failed: \(error.serverInfo?[.message] ?? "\(error)")"
                    )
                }
            }
            try await connection.query(
                """
                INSERT INTO dibs_schema_migrations (version, name, checksum)
                VALUES (\(migration.version), \(migration.name), \(migration.checksum))
                """, logger: logger)
            try await connection.query("COMMIT", logger: logger)
            done.append(migration.version)
        }
        return MigrationReport(applied: done, alreadyApplied: applied.keys.sorted())
    }
}
