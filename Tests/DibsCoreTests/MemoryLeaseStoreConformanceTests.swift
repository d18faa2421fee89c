import DibsCore
import LeaseStoreConformance
import Testing

@Suite("MemoryLeaseStore conformance")
struct MemoryLeaseStoreConformanceTests {
    @Test(arguments: ConformanceCase.allCases)
    func conforms(_ conformanceCase: ConformanceCase) async throws {
        let clock = ManualClock()
        try await conformanceCase.run(ConformanceHarness(store: MemoryLeaseStore(clock: clock), time: .manual(clock)))
    }
}

@Suite("The conformance suite catches a racy store")
struct RacyStoreTests {
    @Test func stampedeCatchesCheckThenSet() async throws {
        let clock = ManualClock()
        let harness = ConformanceHarness(store: RacyLeaseStore(clock: clock), time: .manual(clock))
        await #expect(throws: ConformanceFailure.self) {
            try await ConformanceCase.stampedeGivesEachUnitOnce.run(harness)
        }
    }

    @Test func limitCatchesCheckThenSet() async throws {
        let clock = ManualClock()
        let harness = ConformanceHarness(store: RacyLeaseStore(clock: clock), time: .manual(clock))
        await #expect(throws: ConformanceFailure.self) {
            try await ConformanceCase.perUserLimitUnderConcurrency.run(harness)
        }
    }
}
