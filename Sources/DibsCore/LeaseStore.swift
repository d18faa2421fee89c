/// The contract every lease backend keeps (memory, Redis, Postgres), checked by one
/// conformance suite. Every method is atomic with respect to the drop it touches, and
/// every method first notices expired leases of that drop, ending them and promoting
/// the oldest waitlisted claims in the same atomic step.
public protocol LeaseStore: Sendable {
    /// A short name for reports: `memory`, `redis`, `postgres`.
    var backendName: String { get }

    /// How long after a drop is first seen with every unit sold a claim that began before
    /// may still record an answer other than "sold out" (so `answeredKeys` may still grow).
    /// Zero for a store whose claim is one atomic step that sees the sale.
    var soldAnswersSettle: Duration { get }

    /// Whether a claim's hold token is kept with the claim, in the same atomic step, so a
    /// replay carries it: then the HTTP service need not keep the claim's answer itself.
    var keepsHoldTokens: Bool { get }

    /// Creates a drop with all its units free. Throws `.dropExists` for a taken id.
    func createDrop(_ config: DropConfig) async throws

    /// Answers a claim. The same Idempotency-Key on the same drop replays the first answer
    /// (with its hold token if `keepsHoldTokens`, else without); with another shopper it
    /// throws `.idempotencyKeyReused`.
    func claim(_ request: ClaimRequest) async throws -> ClaimOutcome

    /// `claim` without awaiting it: `done` gets its outcome or error, once, on whatever
    /// thread the store answers on. A store that can answer without Swift concurrency (Redis,
    /// on the event loop that read the request) saves a claim the hops into a task and back;
    /// the others run `claim` in a task.
    func startClaim(_ request: ClaimRequest, then done: @escaping @Sendable (Result<ClaimOutcome, any Error>) -> Void)

    /// Turns a held unit into a sale, if the token and fence are the current lease's and the
    /// lease has not expired. Confirming a confirmed claim again returns the same sale.
    func confirm(_ request: ConfirmRequest) async throws -> Sale

    /// Gives a held unit back (promoting the oldest waitlisted claim onto it) or takes a
    /// waitlisted or entered claim out of line. Releasing twice returns the same status.
    func release(claim: ClaimID, holdToken: HoldToken) async throws -> ClaimStatus

    /// Restarts a held lease's TTL from now, keeping its fence.
    func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) async throws -> Lease

    /// Ends every expired lease of the drop and promotes waitlisted claims onto the units.
    func reapExpired(drop: DropID) async throws -> ReapReport

    /// A claim's state, for polling.
    func status(of claim: ClaimID) async throws -> ClaimStatus

    /// A drop's live counts and leases.
    func inspect(drop: DropID) async throws -> DropSnapshot

    /// A drop's live counts without its leases (`leases` is empty): what the gauges, the
    /// drop endpoint and the sold-out check read, often and during a stampede, so it must not
    /// grow with the leases (Redis building every lease blocked all claims for 0.3 s).
    func counts(drop: DropID) async throws -> DropSnapshot

    /// Whether `counts` costs the store work that grows with the drop (Postgres counts the
    /// drop's free and held units: ~0.15 s for 1,000,000 of them here), so a caller answering
    /// many readers should reuse a recent answer. False unless a store says so.
    var countingIsCostly: Bool { get }

    /// Whether every unit of the drop is sold (a sale is for good, so then the drop is sold
    /// out for good). The HTTP service asks this once a second while claims are answered
    /// "sold out", to answer them from memory once it is true; `counts` answers it unless a
    /// store has a cheaper way (Postgres: no free and no held unit, two index probes).
    func everyUnitSold(drop: DropID) async throws -> Bool

    /// The Idempotency-Keys of the drop's claims whose first answer was not "sold out" (held,
    /// waitlisted, entered, limit reached). Once every unit is sold, any other key's claim
    /// was, or would now be, answered "sold out": the HTTP service answers those from memory.
    func answeredKeys(drop: DropID) async throws -> Set<IdempotencyKey>

    /// A drop's settings as the store holds them.
    func configuration(of drop: DropID) async throws -> DropConfig

    /// Sets the window in which a drop takes claims (an operator opening or closing it);
    /// claims, leases and sales are untouched. Answers the new settings.
    func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig
}

extension LeaseStore {
    public var countingIsCostly: Bool { false }

    public func everyUnitSold(drop: DropID) async throws -> Bool {
        let counts = try await counts(drop: drop)
        return counts.sold == counts.units
    }

    public func startClaim(
        _ request: ClaimRequest, then done: @escaping @Sendable (Result<ClaimOutcome, any Error>) -> Void
    ) {
        Task {
            do { done(.success(try await claim(request))) } catch { done(.failure(error)) }
        }
    }
}
