import DibsCore
import DibsRedis
import LeaseStoreConformance
import Testing

@Suite("RedisLeaseStore conformance, against the Redis and Postgres of scripts/dev")
struct RedisLeaseStoreConformanceTests {
    @Test(arguments: ConformanceCase.allCases)
    func conforms(_ conformanceCase: ConformanceCase) async throws {
        try await TestServers.withStore { store, _, _ in
            try await conformanceCase.run(ConformanceHarness(store: store, time: .real))
        }
    }

    /// The same cases with every claim sent as the HTTP server's event loop sends it.
    @Test(arguments: ConformanceCase.allCases)
    func conformsWithClaimsStarted(_ conformanceCase: ConformanceCase) async throws {
        try await TestServers.withStore { store, _, _ in
            try await conformanceCase.run(ConformanceHarness(store: store, time: .real, startsClaims: true))
        }
    }
}
