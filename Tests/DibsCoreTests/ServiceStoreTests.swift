import DibsCore
import LeaseStoreConformance
import Testing

@Suite("The HTTP service's in-process stores")
struct ServiceStoreTests {
    @Test func idempotencyAnswers() async throws {
        try await ServiceStoreContracts.verifyIdempotency(MemoryIdempotencyStore())
    }

    @Test func tokenBuckets() async throws {
        try await ServiceStoreContracts.verifyRateLimiter(InProcessRateLimiter())
        try await ServiceStoreContracts.verifyRateLimiter(InProcessRateLimiter(), startsAdmissions: true)
    }

    @Test func apiKeys() async throws {
        try await ServiceStoreContracts.verifyAPIKeys(MemoryAPIKeyStore())
    }

    @Test func aPendingKeyEndsByItself() async throws {
        let clock = ManualClock()
        let store = MemoryIdempotencyStore(clock: clock)
        #expect(store.begin(key: "k", fingerprint: [1], pendingFor: .seconds(30)) == .started)
        clock.advance(by: .seconds(31))
        #expect(store.begin(key: "k", fingerprint: [2], pendingFor: .seconds(30)) == .started)
    }

    @Test func bucketsRefillOverTime() async throws {
        let clock = ManualClock()
        let limiter = InProcessRateLimiter(clock: clock)
        let bucket = RateBucket(key: "ip:x", limit: RateLimit(perSecond: 2, burst: 1)!)
        #expect(limiter.admit([bucket]) == .allowed)
        #expect(limiter.admit([bucket]) == .limited(key: "ip:x", retryAfter: .milliseconds(500)))
        clock.advance(by: .milliseconds(500))
        #expect(limiter.admit([bucket]) == .allowed)
    }
}
