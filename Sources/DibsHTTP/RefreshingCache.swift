import DibsCore
import Synchronization

/// Values read from a store and trusted for `freshFor`. When an entry goes stale under load,
/// one caller reads it again while the others keep the stale value (for at most another
/// `freshFor`), so an expiry costs one store read instead of one per request in flight: with
/// 256 connections every expiry of the API key cache sent ~150 lookups to Postgres at once.
/// A key read for the first time is read once too: the callers that come while that read
/// runs wait for it (a drop's counts polled as it opens cost Postgres one count, not one per
/// poll in flight), and get its failure if it fails.
final class RefreshingCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var readAt: Timestamp
        var refreshing: Bool
    }

    /// The callers waiting for a key's first read; `nil` answers "read it yourself".
    private typealias Waiter = CheckedContinuation<(value: Value, readAt: Timestamp)?, any Error>

    private struct State {
        var entries: [Key: Entry] = [:]
        /// Keys whose first read is running, with the callers waiting for it.
        var firstReads: [Key: [Waiter]] = [:]
    }

    /// What a caller does for a key: take the cached value, read a stale one again, or read
    /// (or wait for) the first.
    private enum Next {
        case cached(Value, Timestamp)
        case refresh
        case firstRead
    }

    private let state = Mutex(State())
    private let clock: any DibsClock
    private let freshFor: Duration
    /// Past this many entries the cache is emptied, which bounds what unknown keys can fill.
    private let capacity: Int

    init(clock: any DibsClock, freshFor: Duration, capacity: Int = 10_000) {
        self.clock = clock
        self.freshFor = freshFor
        self.capacity = capacity
    }

    /// The value for `key` and when it was read: cached, read with `load` by this caller, or
    /// (for a key not read before) read by the caller that came first.
    func value(_ key: Key, load: () async throws -> Value) async throws -> (value: Value, readAt: Timestamp) {
        let now = clock.now()
        let next: Next = state.withLock { state in
            guard var entry = state.entries[key] else { return .firstRead }
            if now < entry.readAt.adding(freshFor) { return .cached(entry.value, entry.readAt) }
            if entry.refreshing && now < entry.readAt.adding(freshFor * 2) { return .cached(entry.value, entry.readAt) }
            entry.refreshing = true  // this caller reads it again; the others keep the stale value
            state.entries[key] = entry
            return .refresh
        }
        switch next {
        case .cached(let value, let readAt):
            return (value, readAt)
        case .refresh:
            do {
                let value = try await load()
                return store(value, for: key, readAt: now)
            } catch {
                state.withLock { $0.entries[key]?.refreshing = false }
                throw error
            }
        case .firstRead:
            // Wait for a first read already running, or become the one that reads.
            let read: (value: Value, readAt: Timestamp)? = try await withCheckedThrowingContinuation { waiter in
                let answer: (value: Value, readAt: Timestamp)?? = state.withLock { state in
                    if let entry = state.entries[key] { return .some((entry.value, entry.readAt)) }
                    if state.firstReads[key] != nil {
                        state.firstReads[key]!.append(waiter)
                        return nil
                    }
                    state.firstReads[key] = []
                    return .some(nil)
                }
                if let answer { waiter.resume(returning: answer) }
            }
            if let read { return read }
            let value: Value
            do {
                value = try await load()
            } catch {
                let waiters = state.withLock { $0.firstReads.removeValue(forKey: key) ?? [] }
                // A cancelled reader's waiters read for themselves; any other failure is theirs too.
                for waiter in waiters {
                    if error is CancellationError {
                        waiter.resume(returning: nil)
                    } else {
                        waiter.resume(throwing: error)
                    }
                }
                throw error
            }
            return store(value, for: key, readAt: now)
        }
    }

    /// Keeps a value read at `readAt` and hands it to the callers waiting for its first read.
    private func store(_ value: Value, for key: Key, readAt: Timestamp) -> (value: Value, readAt: Timestamp) {
        let waiters = state.withLock { state in
            if state.entries.count >= capacity && state.entries[key] == nil { state.entries.removeAll() }
            state.entries[key] = Entry(value: value, readAt: readAt, refreshing: false)
            return state.firstReads.removeValue(forKey: key) ?? []
        }
        for waiter in waiters { waiter.resume(returning: (value, readAt)) }
        return (value, readAt)
    }

    /// The value for `key` if it was read less than `freshFor` ago; nil otherwise.
    func freshValue(_ key: Key) -> Value? {
        let now = clock.now()
        return state.withLock { state in
            guard let entry = state.entries[key], now < entry.readAt.adding(freshFor) else { return nil }
            return entry.value
        }
    }

    /// Forgets `key`: the next caller reads it again.
    func remove(_ key: Key) { _ = state.withLock { $0.entries.removeValue(forKey: key) } }

    /// How many callers wait for `key`'s first read.
    func waiting(for key: Key) -> Int { state.withLock { $0.firstReads[key]?.count ?? 0 } }

    /// The keys held, fresh or not.
    var keys: [Key] { state.withLock { Array($0.entries.keys) } }
}
