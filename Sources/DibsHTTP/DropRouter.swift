import DibsCore
import Synchronization

/// Finds the lease store of a drop, through the directory, remembering what it learns: a
/// drop's backend never changes, its cancelled flag is re-read after `cacheFor`, and a drop
/// whose every unit is sold is remembered for good so claims on it are answered here.
final class DropRouter: Sendable {
    private let stores: [String: any LeaseStore]
    let directory: any DropDirectory
    private let clock: any DibsClock
    /// Where each known drop lives; an unknown drop is not remembered (another process may
    /// create it any moment).
    private let locations: RefreshingCache<DropID, DropLocation>
    /// Drops whose every unit is sold: the keys of their claims not answered "sold out", and
    /// the "sold out" answer, made once.
    private let soldOut = Mutex<[DropID: SoldDrop]>([:])

    private struct SoldDrop {
        let answeredKeys: Set<String>
        let answer: APIResponse
    }
    private let soldOutCheckedAt = Mutex<[DropID: Timestamp]>([:])
    /// When each drop was first seen with every unit sold.
    private let soldOutSeenAt = Mutex<[DropID: Timestamp]>([:])

    init(stores: [any LeaseStore], directory: any DropDirectory, clock: any DibsClock, cacheFor: Duration) {
        self.stores = Dictionary(stores.map { ($0.backendName, $0) }, uniquingKeysWith: { first, _ in first })
        self.directory = directory
        self.clock = clock
        self.locations = RefreshingCache(clock: clock, freshFor: cacheFor)
    }

    var backends: [String] { stores.keys.sorted() }
    var allStores: [any LeaseStore] { Array(stores.values) }

    func store(backend: String) -> (any LeaseStore)? { stores[backend] }

    /// The drop's store and whether it was cancelled; throws `unknown-drop`.
    func route(_ drop: DropID) async throws -> (store: any LeaseStore, cancelled: Bool) {
        let location = try await locations.value(drop) {
            guard let found = try await self.directory.locate(drop) else {
                throw Problem(.unknownDrop, "no drop \(drop)")
            }
            return found
        }.value
        guard let store = stores[location.backend] else {
            throw Problem(.storeUnavailable, "drop \(drop) is on \(location.backend), which this server does not run")
        }
        return (store, location.cancelled)
    }

    /// The drop's store and whether it was cancelled when the answer is at hand, read less
    /// than the cache's time ago; nil when only the directory can say.
    func knownRoute(_ drop: DropID) -> (store: any LeaseStore, cancelled: Bool)? {
        guard let location = locations.freshValue(drop), let store = stores[location.backend] else { return nil }
        return (store, location.cancelled)
    }

    func forget(_ drop: DropID) { locations.remove(drop) }

    /// Known drops, for the metrics sampler.
    var knownDrops: [DropID] { locations.keys }

    /// "Sold out" for `key` when every unit of the drop is sold and the store did not answer
    /// the key otherwise (those keys go on to the store, which replays them); `nil` otherwise.
    func soldOutAnswer(_ drop: DropID, key: IdempotencyKey) -> APIResponse? {
        guard let sold = soldOut.withLock({ $0[drop] }), !sold.answeredKeys.contains(key.rawValue) else { return nil }
        return sold.answer
    }

    /// After a "sold out" answer: checks (at most once a second per drop) whether every
    /// unit is sold, which is for good — sold units never come back — and if so learns the
    /// keys that were answered otherwise.
    func noteSoldOut(_ drop: DropID, store: any LeaseStore) async {
        guard soldOutCheckIsDue(drop) else { return }
        await checkSoldOut(drop, store: store)
    }

    /// `noteSoldOut` for a caller that does not wait: the check, when due, runs in a task.
    func noteSoldOutInBackground(_ drop: DropID, store: any LeaseStore) {
        guard soldOutCheckIsDue(drop) else { return }
        Task { await checkSoldOut(drop, store: store) }
    }

    private func soldOutCheckIsDue(_ drop: DropID) -> Bool {
        let now = clock.now()
        return soldOutCheckedAt.withLock { checked in
            if let last = checked[drop], now.milliseconds - last.milliseconds < 1000 { return false }
            checked[drop] = now
            return true
        }
    }

    private func checkSoldOut(_ drop: DropID, store: any LeaseStore) async {
        let now = clock.now()
        guard (try? await store.everyUnitSold(drop: drop)) == true else { return }
        // Every unit is sold. The keys are read once no claim that began before this moment
        // can still record an answer other than "sold out" (the store's settle; at once for
        // a store whose claim sees the sale atomically): until then claims go to the store.
        let seen = soldOutSeenAt.withLock { seen in
            if let first = seen[drop] { return first }
            seen[drop] = now
            return now
        }
        guard now >= seen.adding(store.soldAnswersSettle), let keys = try? await store.answeredKeys(drop: drop) else {
            return
        }
        let sold = SoldDrop(answeredKeys: Set(keys.map(\.rawValue)), answer: APIResponse(DibsService.soldOut(drop)))
        soldOut.withLock { $0[drop] = sold }
    }
}
