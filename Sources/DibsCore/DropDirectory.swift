import Synchronization

/// Where a drop lives and whether an operator cancelled it: what the HTTP service asks
/// before it routes a request to a lease store.
public struct DropLocation: Sendable, Hashable {
    /// The backend's name: `memory`, `redis` or `postgres`.
    public let backend: String
    /// Whether an operator cancelled the drop: it takes no claims and no confirms.
    public let cancelled: Bool

    /// Makes a location.
    public init(backend: String, cancelled: Bool) {
        self.backend = backend
        self.cancelled = cancelled
    }
}

/// The directory of drops across backends (Postgres's `dibs_drops`, or memory for a
/// server without Postgres).
public protocol DropDirectory: Sendable {
    /// The drop's backend and state, or `nil` for an unknown drop.
    func locate(_ drop: DropID) async throws -> DropLocation?
    /// Notes a drop a store has just created (a no-op where the store writes the directory).
    func didCreate(_ drop: DropID, backend: String) async throws
    /// Marks a drop cancelled.
    func cancel(_ drop: DropID) async throws
}

/// The directory of a server without Postgres: one process, gone when it ends.
public final class MemoryDropDirectory: DropDirectory {
    private let drops = Mutex<[DropID: DropLocation]>([:])

    /// Makes an empty directory.
    public init() {}

    public func locate(_ drop: DropID) -> DropLocation? { drops.withLock { $0[drop] } }

    public func didCreate(_ drop: DropID, backend: String) {
        drops.withLock { $0[drop] = DropLocation(backend: backend, cancelled: false) }
    }

    public func cancel(_ drop: DropID) throws(DibsError) {
        try drops.withLock { (all) throws(DibsError) in
            guard let location = all[drop] else { throw DibsError(.unknownDrop, "no drop \(drop)") }
            all[drop] = DropLocation(backend: location.backend, cancelled: true)
        }
    }
}
