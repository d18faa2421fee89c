public import DibsCore

/// A closed-loop claim benchmark: `concurrency` workers claim one after another for
/// `duration`, as pgbench's clients do, so the two rates compare like for like.
public struct ClaimBenchmark: Sendable {
    /// Which path of the claim is measured.
    public enum Path: String, Sendable, CaseIterable {
        /// Every claim takes a free unit (a drop with more units than the run can claim).
        case claim
        /// Every claim is answered sold out (a one-unit drop whose unit is sold).
        case soldOut = "sold-out"
    }

    /// The figures of one run.
    public struct Result: Sendable {
        public let path: Path
        public let claims: Int
        public let seconds: Double
        public let outcomes: [String: Int]
        public let p50Milliseconds: Double
        public let p99Milliseconds: Double
        public var claimsPerSecond: Double { Double(claims) / seconds }
    }

    public let path: Path
    public let concurrency: Int
    public let duration: Duration
    /// Units of the drop for the claim path: enough that no run sells out.
    public let units: Int

    /// Makes a benchmark.
    public init(path: Path, concurrency: Int, duration: Duration, units: Int = 1_000_000) {
        self.path = path
        self.concurrency = concurrency
        self.duration = duration
        self.units = units
    }

    /// Runs the workers against `existing`, a drop prepared for the path (free units for
    /// `claim`, every unit sold for `sold-out`), or against a fresh drop it prepares.
    public func run(on store: any LeaseStore, existing: DropID? = nil) async throws -> Result {
        let drop: DropID
        if let existing { drop = existing } else { drop = try await prepareDrop(on: store) }
        // Fresh shoppers and keys each run, so a second run on the same drop is not a replay.
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let deadline = ContinuousClock.now + duration
        let started = ContinuousClock.now
        let perWorker = try await withThrowingTaskGroup(of: ([Int64], [String: Int]).self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var latencies: [Int64] = []
                    var outcomes: [String: Int] = [:]
                    var sequence = 0
                    while ContinuousClock.now < deadline {
                        sequence += 1
                        let request = try ClaimRequest(
                            drop: drop, user: UserID("\(run)-\(worker)-\(sequence)"),
                            idempotencyKey: IdempotencyKey("\(run)-\(worker)-\(sequence)"))
                        let sent = ContinuousClock.now
                        let outcome = try await store.claim(request)
                        let elapsed = ContinuousClock.now - sent
                        latencies.append(
                            elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
                        outcomes[Self.label(outcome.decision), default: 0] += 1
                        // An answer from memory (a sold-out drop) does not suspend: yield, so the
                        // tasks waiting on the store's sockets get their turn, as between requests.
                        await Task.yield()
                    }
                    return (latencies, outcomes)
                }
            }
            var all: [([Int64], [String: Int])] = []
            for try await result in group { all.append(result) }
            return all
        }
        let elapsed = ContinuousClock.now - started
        let latencies = perWorker.flatMap(\.0).sorted()
        let outcomes = perWorker.map(\.1).reduce(into: [String: Int]()) { total, part in
            total.merge(part, uniquingKeysWith: +)
        }
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return 0 }
            return Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1e6
        }
        return Result(
            path: path, claims: latencies.count,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
            outcomes: outcomes, p50Milliseconds: percentile(0.5), p99Milliseconds: percentile(0.99))
    }

    /// Creates a fresh drop ready for the path: free units, or its one unit sold.
    public func prepareDrop(on store: any LeaseStore) async throws -> DropID {
        let drop = try Stampede.freshDrop()
        let opens = SystemClock().now().adding(.seconds(-1))
        switch path {
        case .claim:
            try await store.createDrop(DropConfig(id: drop, units: units, opensAt: opens))
        case .soldOut:
            try await store.createDrop(DropConfig(id: drop, units: 1, waitlistCapacity: 0, opensAt: opens))
            let first = try await store.claim(
                ClaimRequest(drop: drop, user: UserID("first"), idempotencyKey: IdempotencyKey("first")))
            guard case .held(_, let fence, _) = first.decision, let claim = first.claim, let token = first.holdToken
            else {
                throw DibsError(.internalError, "the benchmark could not hold the one unit: \(first.decision)")
            }
            _ = try await store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: fence))
        }
        return drop
    }

    static func label(_ decision: ClaimOutcome.Decision) -> String {
        switch decision {
        case .held: "held"
        case .waitlisted: "waitlisted"
        case .entered: "entered"
        case .rejected(let reason): reason.rawValue
        }
    }
}
