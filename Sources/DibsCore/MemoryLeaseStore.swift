/// The memory lease store: every drop's `DropLedger` inside one actor, so each operation
/// is atomic. For a zero-set-up try-out and as the reference model; single process only,
/// and everything is gone when the process ends.
public actor MemoryLeaseStore: LeaseStore {
    public nonisolated var backendName: String { "memory" }
    public nonisolated var soldAnswersSettle: Duration { .zero }
    public nonisolated var keepsHoldTokens: Bool { true }

    private let clock: any DibsClock
    private var drops: [DropID: DropLedger] = [:]

    /// Makes an empty store that reads the time from `clock`.
    public init(clock: any DibsClock = SystemClock()) {
        self.clock = clock
    }

    public func createDrop(_ config: DropConfig) throws(DibsError) {
        guard drops[config.id] == nil else {
            throw DibsError(.dropExists, "drop \(config.id) exists already")
        }
        drops[config.id] = DropLedger(config: config)
    }

    public func claim(_ request: ClaimRequest) throws(DibsError) -> ClaimOutcome {
        try withDrop(request.drop) { ledger, now throws(DibsError) in try ledger.claim(request, now: now) }
    }

    public func confirm(_ request: ConfirmRequest) throws(DibsError) -> Sale {
        try withDrop(request.claim.drop) { ledger, now throws(DibsError) in try ledger.confirm(request, now: now) }
    }

    public func release(claim: ClaimID, holdToken: HoldToken) throws(DibsError) -> ClaimStatus {
        try withDrop(claim.drop) { ledger, now throws(DibsError) in
            try ledger.release(claim, token: holdToken, now: now)
        }
    }

    public func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) throws(DibsError) -> Lease {
        try withDrop(claim.drop) { ledger, now throws(DibsError) in
            try ledger.extend(claim, token: holdToken, fence: fence, now: now)
        }
    }

    public func reapExpired(drop: DropID) throws(DibsError) -> ReapReport {
        try withDrop(drop) { ledger, now in ledger.settle(now: now) }
    }

    public func status(of claim: ClaimID) throws(DibsError) -> ClaimStatus {
        try withDrop(claim.drop) { ledger, now throws(DibsError) in
            _ = ledger.settle(now: now)
            return try ledger.status(of: claim)
        }
    }

    public func inspect(drop: DropID) throws(DibsError) -> DropSnapshot {
        try withDrop(drop) { ledger, now in
            _ = ledger.settle(now: now)
            return ledger.snapshot()
        }
    }

    public func counts(drop: DropID) throws(DibsError) -> DropSnapshot {
        try withDrop(drop) { ledger, now in
            _ = ledger.settle(now: now)
            return ledger.snapshot(withLeases: false)
        }
    }

    public func answeredKeys(drop: DropID) throws(DibsError) -> Set<IdempotencyKey> {
        try withDrop(drop) { ledger, _ in ledger.answeredKeys() }
    }

    public func configuration(of drop: DropID) throws(DibsError) -> DropConfig {
        try withDrop(drop) { ledger, _ in ledger.config }
    }

    public func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) throws(DibsError) -> DropConfig {
        try withDrop(drop) { ledger, _ throws(DibsError) in
            try ledger.reschedule(opensAt: opensAt, closesAt: closesAt)
            return ledger.config
        }
    }

    private func withDrop<Result>(
        _ id: DropID, _ body: (inout DropLedger, Timestamp) throws(DibsError) -> Result
    ) throws(DibsError) -> Result {
        guard drops[id] != nil else { throw DibsError(.unknownDrop, "no drop \(id)") }
        let now = clock.now()
        return try body(&drops[id]!, now)
    }
}
