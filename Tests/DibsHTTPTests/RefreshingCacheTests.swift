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
        let hanging = try await GatedRead.start(cache, "k") { 2 }
        clock.advance(by: .seconds(5))  // 11 s after the read: past twice the freshness
        let own = try await cache.value("k") { 4 }
        XCTAssertEqual(own.value, 4, "past twice the freshness a caller reads for itself")
        hanging.open()
        _ = try await hanging.task.value
    }

    /// Callers that come while a key's first read runs wait for it, and read nothing themselves.
    func testAFirstReadIsSharedByTheCallersThatComeWhileItRuns() async throws {
        let clock = ManualClock(start: Timestamp(milliseconds: 1_000_000))
        let cache = RefreshingCache<String, Int>(clock: clock, freshFor: .seconds(5))
        let reader = try await GatedRead.start(cache, "k") { 1 }
        let waiters = (0..<50).map { _ in
            Task {
                try await cache.value("k") {
                    XCTFail("a second first read"); return 0
                }
            }
        }
        try await Self.waitUntil { cache.waiting(for: "k") == 50 }
        reader.open()
        let read = try await reader.task.value
        XCTAssertEqual(read.value, 1)
        for waiter in waiters {
            let waited = try await waiter.value
            XCTAssertEqual(waited.value, 1)
        }
        XCTAssertEqual(cache.waiting(for: "k"), 0)
    }

    /// A first read that fails fails its waiters too (each would have met the same store), and
    /// leaves nothing behind; a cancelled one lets its waiters read for themselves.
    func testAFailedFirstReadFailsItsWaitersAndACancelledOneLetsThemRead() async throws {
        let clock = ManualClock(start: Timestamp(milliseconds: 1_000_000))
        let cache = RefreshingCache<String, Int>(clock: clock, freshFor: .seconds(5))
        struct Down: Error {}
        for cancelled in [false, true] {
            let reader = try await GatedRead.start(cache, "k") {
                if cancelled { throw CancellationError() }
                throw Down()
            }
            let waiter = Task { try await cache.value("k") { 7 } }
            try await Self.waitUntil { cache.waiting(for: "k") == 1 }
            reader.open()
            do {
                _ = try await reader.task.value
                XCTFail("the reader's failure was swallowed")
            } catch {}
            if cancelled {
                let own = try await waiter.value
                XCTAssertEqual(own.value, 7, "after a cancelled read the waiter reads for itself")
                cache.remove("k")
            } else {
                do {
                    _ = try await waiter.value
                    XCTFail("a waiter got a value from a failed read")
                } catch is Down {}
                XCTAssertFalse(cache.keys.contains("k"), "a failed first read left an entry")
            }
            XCTAssertEqual(cache.waiting(for: "k"), 0)
        }
    }

    struct NeverHappened: Error {}

    /// Waits, for at most 5 s, until `condition` holds.
    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw NeverHappened() }
            try await Task.sleep(for: .milliseconds(1))
        }
    }
}

/// A read of a key that has begun and answers `result` once opened: what the other callers
/// do while a read runs.
struct GatedRead {
    let task: Task<(value: Int, readAt: Timestamp), any Error>
    let open: @Sendable () -> Void

    static func start(
        _ cache: RefreshingCache<String, Int>, _ key: String, result: @escaping @Sendable () throws -> Int
    ) async throws -> GatedRead {
        let started = Mutex(false)
        let (gate, opener) = AsyncStream<Void>.makeStream()
        let task = Task {
            try await cache.value(key) {
                started.withLock { $0 = true }
                for await _ in gate { break }
                return try result()
            }
        }
        try await RefreshingCacheTests.waitUntil { started.withLock { $0 } }
        return GatedRead(task: task, open: { opener.yield() })
    }
}
