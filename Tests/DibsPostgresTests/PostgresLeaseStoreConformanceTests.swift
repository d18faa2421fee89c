import DibsCore
import DibsPostgres
import LeaseStoreConformance
import Testing

@Suite("PostgresLeaseStore conformance, against the Postgres of scripts/dev")
struct PostgresLeaseStoreConformanceTests {
    @Test(arguments: ConformanceCase.allCases)
    func conforms(_ conformanceCase: ConformanceCase) async throws {
        try await TestPostgres.withClient { client in
            let store = PostgresLeaseStore(client: client, server: try TestPostgres.url(), logger: TestPostgres.logger)
            try await conformanceCase.run(ConformanceHarness(store: store, time: .real))
        }
    }
}
