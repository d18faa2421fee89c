import DibsCore
import Synchronization
import XCTest

@testable import DibsHTTP

/// The cache in front of the API key and drop lookups: one store read per expiry, however
/// many requests are in flight.
final class RefreshingCacheTests: XCTestCase {
    func testAStaleEntryIsReadOnceWhileTheOthersKeepIt() async throws {
        let clock = ManualClock(start: Timestamp(milliseconds: 1_000_000))
        let cache = RefreshingCache<String, Int>(clock: clock, freshFor: .seconds(5))
        let loads = Mutex(0)
        let first = try await cache.value("k") {
            loads.withLock { $0 += 1 }
            return 1
        }
        XCTAssertEqual(first.value, 1)
        let fresh = try await cache.value("k") {
            XCTFail("a fresh entry was read again"); return 0
        }
        XCTAssertEqual(fresh.value, 1)

        clock.advance(by: .seconds(6))
        let (gate, open) = AsyncStream<Void>.makeStream()
        let refresh = Task {
            try await cache.value("k") {
                loads.withLock { $0 += 1 }
                for await _ in gate { break }
                return 2
            }
        }
        while loads.withLock({ $0 }) < 2 { await Task.yield() }
        // While that read runs, everyone else gets the stale value at once, no read of their own.
        for _ in 0..<50 {
            let stale = try await cache.value("k") {
                XCTFail("a second read while one runs"); return 0
            }
            XCTAssertEqual(stale.value, 1)
        }
        open.yield()
        let refreshed = try await refresh.value
        XCTAssertEqual(refreshed.value, 2)
        XCTAssertEqual(refreshed.readAt, clock.now())
        let after = try await cache.value("k") {
            XCTFail("the refreshed entry was read again"); return 0
        }
        XCTAssertEqual(after.value, 2)
        XCTAssertEqual(loads.withLock { $0 }, 2)
    }

    func testAFailedReadIsNotKeptAndTheNextCallerTriesAgain() async throws {
        let clock = ManualClock(start: Timestamp(milliseconds: 1_000_000))
        let cache = RefreshingCache<String, Int>(clock: clock, freshFor: .seconds(5))
        _ = try await cache.value("k") { 1 }
        clock.advance(by: .seconds(6))
        struct Down: Error {}
        do {
            _ = try await cache.value("k") { throw Down() }
            XCTFail("the failure was swallowed")
        } catch is Down {}
        let retried = try await cache.value("k") { 3 }
        XCTAssertEqual(retried.value, 3, "after a failed read the next caller reads again")
        do {
            _ = try await cache.value("missing") { throw Down() }
            XCTFail("the failure was swallowed")
        } catch is Down {}
        XCTAssertFalse(cache.keys.contains("missing"), "a failed first read left an entry")
    }

    func testAStaleValueIsNotServedForeverWhileAReadHangs() async throws {
        let clock = ManualClock(start: Timestamp(milliseconds: 1_000_000))
        let cache = RefreshingCache<String, Int>(clock: clock, freshFor: .seconds(5))
        _ = try await cache.value("k") { 1 }
        clock.advance(by: .seconds(6))
        let started = Mutex(false)
        let (gate, open) = AsyncStream<Void>.makeStream()
        let hanging = Task {
            try await cache.value("k") {
                started.withLock { $0 = true }
                for await _ in gate { break }
                return 2
            }
        }
        while !started.withLock({ $0 }) { await Task.yield() }
        clock.advance(by: .seconds(5))  // 11 s after the read: past twice the freshness
        let own = try await cache.value("k") { 4 }
        XCTAssertEqual(own.value, 4, "past twice the freshness a caller reads for itself")
        open.yield()
        _ = try await hanging.value
    }
}
