import DibsCore
import PostgresNIO
import Testing

@testable import DibsPostgres

@Suite("dibs migrate against the real Postgres", .serialized)
struct MigratorTests {
    static let tiny = [
        Migration(version: 1, name: "one", sql: "CREATE TABLE t_one (id int PRIMARY KEY);"),
        Migration(
            version: 2, name: "two",
            sql: """
                -- a function whose body holds semicolons
                CREATE FUNCTION t_two() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 2; END; $$;
                INSERT INTO t_one VALUES (1);
                """),
    ]

    @Test func appliesTheRepositorySchemaOnceAndIsSafeToRerun() async throws {
        let migrations = try Migration.load(from: TestPostgres.schemaDirectory)
        #expect(migrations.first?.version == 1)
        try await TestPostgres.withScratchDatabase { database in
            try await TestPostgres.withClient(database: database) { client in
                let migrator = Migrator(client: client, logger: TestPostgres.logger)
                let first = try await migrator.migrate(migrations)
                #expect(first.applied == migrations.map(\.version))
                let second = try await migrator.migrate(migrations)
                #expect(second.applied.isEmpty)
                #expect(second.alreadyApplied == migrations.map(\.version))
                let rows = try await client.query("SELECT count(*) FROM dibs_schema_migrations").collect()
                #expect(try rows.first?.decode(Int.self) == migrations.count)
            }
        }
    }

    @Test func twoProcessesAtOnceApplyEachMigrationOnce() async throws {
        try await TestPostgres.withScratchDatabase { database in
            // Two clients, two connections: the advisory lock serializes them.
            async let a = TestPostgres.withClient(database: database) { client in
                try await Migrator(client: client, logger: TestPostgres.logger).migrate(Self.tiny)
            }
            async let b = TestPostgres.withClient(database: database) { client in
                try await Migrator(client: client, logger: TestPostgres.logger).migrate(Self.tiny)
            }
            let reports = try await [a, b]
            #expect(reports.map(\.applied.count).sorted() == [0, 2])
            try await TestPostgres.withClient(database: database) { client in
                let rows = try await client.query("SELECT count(*) FROM t_one").collect()
                #expect(try rows.first?.decode(Int.self) == 1)
            }
        }
    }

    @Test func refusesWhenAnAppliedMigrationChanged() async throws {
        try await TestPostgres.withScratchDatabase { database in
            try await TestPostgres.withClient(database: database) { client in
                let migrator = Migrator(client: client, logger: TestPostgres.logger)
                _ = try await migrator.migrate(Self.tiny)
                var edited = Self.tiny
                edited[0] = Migration(version: 1, name: "one", sql: "CREATE TABLE t_one (id bigint PRIMARY KEY);")
                edited.append(Migration(version: 3, name: "three", sql: "CREATE TABLE t_three (id int);"))
                let error = await #expect(throws: DibsError.self) { try await migrator.migrate(edited) }
                #expect(error?.message.contains("changed after it was applied") == true)
                // Nothing after the refusal ran.
                let rows = try await client.query("SELECT count(*) FROM pg_tables WHERE tablename = 't_three'")
                    .collect()
                #expect(try rows.first?.decode(Int.self) == 0)
                // A database newer than the files is refused too.
                await #expect(throws: DibsError.self) { try await migrator.migrate(Array(Self.tiny.prefix(1))) }
            }
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await TestPostgres.withScratchDatabase { database in
            try await TestPostgres.withClient(database: database) { client in
                let migrator = Migrator(client: client, logger: TestPostgres.logger)
                let broken = [
                    Migration(
                        version: 1, name: "half",
                        sql: "CREATE TABLE t_half (id int); SELECT no_such_column FROM t_half;")
                ]
                let error = await #expect(throws: DibsError.self) { try await migrator.migrate(broken) }
                #expect(error?.message.contains("no_such_column") == true)
                let tables = try await client.query("SELECT count(*) FROM pg_tables WHERE tablename = 't_half'")
                    .collect()
                #expect(try tables.first?.decode(Int.self) == 0)
                let recorded = try await client.query("SELECT count(*) FROM dibs_schema_migrations").collect()
                #expect(try recorded.first?.decode(Int.self) == 0)
                // The lock was given back: a good migration set runs afterwards.
                let report = try await migrator.migrate(Self.tiny)
                #expect(report.applied == [1, 2])
            }
        }
    }
}

@Suite struct SQLScriptTests {
    @Test func splitsOnTopLevelSemicolonsOnly() {
        let script = """
            -- comment; with a semicolon
            CREATE TABLE a (note text DEFAULT 'x;y', "we;ird" int);
            /* block; comment */
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;
            SELECT 'it''s; fine';
            SELECT $$a;b$$
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 4)
        #expect(statements[0] == "CREATE TABLE a (note text DEFAULT 'x;y', \"we;ird\" int)")
        #expect(statements[1].hasSuffix("$body$ BEGIN RETURN 1; END; $body$"))
        #expect(statements[2] == "SELECT 'it''s; fine'")
        #expect(statements[3] == "SELECT $$a;b$$")
    }

    @Test func positionalParametersAreNotDollarQuotes() {
        #expect(SQLScript.statements("SELECT $1; SELECT $2") == ["SELECT $1", "SELECT $2"])
    }
}

@Suite struct PostgresURLTests {
    @Test func parses() throws {
        let url = try PostgresURL("postgres://dibs:p%40ss@127.0.0.1:5433/dibs?sslmode=disable")
        #expect(url.user == "dibs" && url.password == "p@ss" && url.host == "127.0.0.1" && url.port == 5433)
        #expect(url.database == "dibs")
        #expect(url.description == "postgres://dibs@127.0.0.1:5433/dibs")
        #expect(try PostgresURL("postgresql://localhost/x").port == 5432)
    }

    @Test(arguments: ["http://x/y", "postgres://host", "postgres://host:99999/db", "postgres://:5432/db"])
    func refuses(_ text: String) {
        #expect(throws: DibsError.self) { try PostgresURL(text) }
    }
}
