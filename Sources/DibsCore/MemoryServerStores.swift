import Synchronization

/// Idempotency-Keys kept in this process: for the memory try-out server and tests.
public final class MemoryIdempotencyStore: IdempotencyStore {
    private enum Entry {
        case pending(fingerprint: [UInt8], until: Timestamp)
        case done(IdempotencyRecord, until: Timestamp)
    }

    private let clock: any DibsClock
    private let entries = Mutex<[String: Entry]>([:])

    /// Makes an empty store that reads the time from `clock`.
    public init(clock: any DibsClock = SystemClock()) {
        self.clock = clock
    }

    public func begin(key: String, fingerprint: [UInt8], pendingFor: Duration) -> IdempotencyStart {
        let now = clock.now()
        return entries.withLock { entries in
            switch entries[key] {
            case .pending(let first, let until) where until > now:
                return first == fingerprint ? .inFlight : .mismatch
            case .done(let record, let until) where until > now:
                return record.fingerprint == fingerprint ? .completed(record) : .mismatch
            default:
                entries[key] = .pending(fingerprint: fingerprint, until: now.adding(pendingFor))
                return .started
            }
        }
    }

    public func peek(key: String, fingerprint: [UInt8]) -> IdempotencyStart? {
        let now = clock.now()
        return entries.withLock { entries in
            switch entries[key] {
            case .pending(let first, let until) where until > now: first == fingerprint ? .inFlight : .mismatch
            case .done(let record, let until) where until > now:
                record.fingerprint == fingerprint ? .completed(record) : .mismatch
            default: nil
            }
        }
    }

    public func complete(key: String, record: IdempotencyRecord, keepFor: Duration) {
        let until = clock.now().adding(keepFor)
        entries.withLock { $0[key] = .done(record, until: until) }
    }

    public func abandon(key: String) {
        entries.withLock { entries in
            if case .pending = entries[key] { entries[key] = nil }
        }
    }
}

/// API keys kept in this process: for the memory try-out server and tests.
public final class MemoryAPIKeyStore: APIKeyStore {
    private let records = Mutex<[String: APIKeyRecord]>([:])

    /// Makes an empty store.
    public init() {}

    public func insert(_ record: APIKeyRecord) throws(DibsError) {
        try records.withLock { (records) throws(DibsError) in
            guard records[record.id] == nil else { throw DibsError(.invalidInput, "key \(record.id) exists") }
            records[record.id] = record
        }
    }

    public func find(id: String) -> APIKeyRecord? { records.withLock { $0[id] } }

    public func revoke(id: String, at time: Timestamp) -> Bool {
        records.withLock { records in
            guard let record = records[id] else { return false }
            if record.revokedAt == nil {
                records[id] = APIKeyRecord(
                    id: record.id, name: record.name, scope: record.scope, salt: record.salt, hash: record.hash,
                    createdAt: record.createdAt, revokedAt: time)
            }
            return true
        }
    }

    public func list() -> [APIKeyRecord] {
        records.withLock { Array($0.values) }.sorted { $0.createdAt > $1.createdAt }
    }
}
