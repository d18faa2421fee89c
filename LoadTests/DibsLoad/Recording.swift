import Synchronization

/// One request as the load generator saw it, on the run's monotonic clock (nanoseconds since
/// the run began).
public struct RecordedOperation: Sendable {
    /// A claim, a retry of one with its key, a confirm, a release, or a waitlisted claim's
    /// promotion (learned afterwards from the claim's status).
    public enum Kind: String, Sendable { case claim, retry, confirm, release, promotion }

    public let kind: Kind
    public let shopper: String
    public let key: String
    /// When it was meant to be sent (open model) or was sent (closed model).
    public let intended: Int64
    public let invoke: Int64
    /// `nil`: no answer (timeout, reset).
    public var response: Int64?
    public var status: Int?
    public var claim: String?
    public var unit: Int?
    public var fence: Int64?
    /// A grant's expiry on the server's clock (milliseconds since 1970).
    public var expiresAt: Int64?
    /// The problem name of a 4xx/5xx, or the state of a 2xx.
    public var outcome: String
    /// The body, for retries compared with the first answer.
    public var body: [UInt8]
    /// A confirm sent after its lease expired (the zombie-shopper fault).
    public var zombie = false

    /// No answer, or one that may hide an effect: a 504, or a 503 from a store that failed
    /// mid-call (the call may have been applied).
    public var isUnknown: Bool { response == nil || status == 504 || status == 503 }
}

/// The history under construction, shared by every worker.
final class Recorder: Sendable {
    private let operations = Mutex<[RecordedOperation]>([])
    func append(_ operation: RecordedOperation) { operations.withLock { $0.append(operation) } }
    var all: [RecordedOperation] { operations.withLock { $0 } }
}

/// Live counts for the progress line.
final class LiveCounts: Sendable {
    struct Counts: Sendable {
        var sent = 0
        var answered = 0
        var byOutcome: [String: Int] = [:]
        var latencies = LatencyHistogram()
    }
    private let counts = Mutex(Counts())

    func sent() { counts.withLock { $0.sent += 1 } }

    func answered(_ outcome: String, latency: Int64) {
        counts.withLock {
            $0.answered += 1
            $0.byOutcome[outcome, default: 0] += 1
            $0.latencies.record(nanoseconds: latency)
        }
    }

    var snapshot: Counts { counts.withLock { $0 } }
}
