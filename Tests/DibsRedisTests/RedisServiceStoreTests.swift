import DibsCore
import DibsRedis
import LeaseStoreConformance
import Testing

@Suite("The HTTP service's Redis stores, against the Redis of scripts/dev")
struct RedisServiceStoreTests {
    @Test func idempotencyAnswers() async throws {
        try await TestServers.withStore { _, client, _ in
            try await ServiceStoreContracts.verifyIdempotency(RedisIdempotencyStore(client: client))
        }
    }

    @Test func tokenBuckets() async throws {
        try await TestServers.withStore { _, client, _ in
            try await ServiceStoreContracts.verifyRateLimiter(RedisRateLimiter(client: client))
        }
    }

    @Test func tokenBucketsStarted() async throws {
        try await TestServers.withStore { _, client, _ in
            try await ServiceStoreContracts.verifyRateLimiter(RedisRateLimiter(client: client), startsAdmissions: true)
        }
    }
}
