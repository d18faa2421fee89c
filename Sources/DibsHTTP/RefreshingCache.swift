import DibsCore
import Synchronization

/// Values read from a store and trusted for `freshFor`. When an entry goes stale under load,
/// one caller reads it again while the others keep the stale value (for at most another
/// `freshFor`), so an expiry costs one store read instead of one per request in flight: with
/// 256 connections every expiry of the API key cache sent ~150 lookups to Postgres at once.
final class RefreshingCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var readAt: Timestamp
        var refreshing: Bool
    }

    private let entries = Mutex<[Key: Entry]>([:])
    private let clock: any DibsClock
    private let freshFor: Duration
    /// Past this many entries the cache is emptied, which bounds what unknown keys can fill.
    private let capacity: Int

    init(clock: any DibsClock, freshFor: Duration, capacity: Int = 10_000) {
        self.clock = clock
        self.freshFor = freshFor
        self.capacity = capacity
    }

    /// The value for `key` and when it was read: cached, or read with `load` by this caller.
    func value(_ key: Key, load: () async throws -> Value) async throws -> (value: Value, readAt: Timestamp) {
        let now = clock.now()
        let cached: (Value, Timestamp)? = entries.withLock { entries in
            guard var entry = entries[key] else { return nil }
            if now < entry.readAt.adding(freshFor) { return (entry.value, entry.readAt) }
            if entry.refreshing && now < entry.readAt.adding(freshFor * 2) { return (entry.value, entry.readAt) }
            entry.refreshing = true  // this caller reads it again; the others keep the stale value
            entries[key] = entry
            return nil
        }
        if let cached { return cached }
        let value: Value
        do {
            value = try await load()
        } catch {
            entries.withLock { $0[key]?.refreshing = false }
            throw error
        }
        entries.withLock { entries in
            if entries.count >= capacity && entries[key] == nil { entries.removeAll() }
            entries[key] = Entry(value: value, readAt: now, refreshing: false)
        }
        return (value, now)
    }

    /// The value for `key` if it was read less than `freshFor` ago; nil otherwise.
    func freshValue(_ key: Key) -> Value? {
        let now = clock.now()
        return entries.withLock { entries in
            guard let entry = entries[key], now < entry.readAt.adding(freshFor) else { return nil }
            return entry.value
        }
    }

    /// Forgets `key`: the next caller reads it again.
    func remove(_ key: Key) { _ = entries.withLock { $0.removeValue(forKey: key) } }

    /// The keys held, fresh or not.
    var keys: [Key] { entries.withLock { Array($0.keys) } }
}
