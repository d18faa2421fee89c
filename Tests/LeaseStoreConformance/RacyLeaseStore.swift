public import DibsCore
import Synchronization

/// A deliberately broken store: it checks for a free unit and the shopper's count, awaits,
/// then takes the unit without checking again — the race every real store must not have.
/// It exists to prove the conformance suite, and `dibs-load` behind HTTP, can catch such a race.
public final class RacyLeaseStore: LeaseStore {
    public var backendName: String { "racy" }
    /// Nothing it does is atomic: the HTTP layer's sold-out shortcut must wait, as for
    /// Postgres, or it would shield the store from the stampedes that show its race.
    public var soldAnswersSettle: Duration { .seconds(10) }
    public var keepsHoldTokens: Bool { false }

    private struct State {
        var configs: [DropID: DropConfig] = [:]
        var held: [DropID: [Int: Int64]] = [:]
        var live: [DropID: [UserID: Int]] = [:]
        var claims: Int64 = 0
        var fence: Int64 = 0
    }

    private let state = Mutex(State())
    private let clock: any DibsClock

    public init(clock: any DibsClock) { self.clock = clock }

    public func createDrop(_ config: DropConfig) async throws {
        state.withLock { $0.configs[config.id] = config }
    }

    public func claim(_ request: ClaimRequest) async throws -> ClaimOutcome {
        guard let config = state.withLock({ $0.configs[request.drop] }) else {
            throw DibsError(.unknownDrop, "no drop")
        }
        // Check…
        let (freeUnit, count) = state.withLock { state in
            let held = state.held[request.drop, default: [:]]
            return (
                (0..<config.units).first { held[$0] == nil },
                state.live[request.drop, default: [:]][request.user, default: 0]
            )
        }
        // A real pause, not a yield: a yield lets another claim in only if one is already queued
        // on the same executor, which a fast machine may never arrange; a millisecond lets every
        // claim that arrives meanwhile check the same free unit.
        try? await Task.sleep(for: .milliseconds(1))
        // …then set, without checking again.
        return state.withLock { state in
            state.claims += 1
            let claim = ClaimID(drop: request.drop, number: state.claims)
            guard count < config.perUserLimit else {
                return ClaimOutcome(claim: claim, decision: .rejected(.limitReached), holdToken: nil, replayed: false)
            }
            guard let unit = freeUnit else {
                return ClaimOutcome(claim: claim, decision: .rejected(.soldOut), holdToken: nil, replayed: false)
            }
            state.fence += 1
            state.held[request.drop, default: [:]][unit] = state.claims
            state.live[request.drop, default: [:]][request.user, default: 0] += 1
            return ClaimOutcome(
                claim: claim,
                decision: .held(unit: unit, fence: Fence(state.fence), expiresAt: clock.now().adding(config.holdTTL)),
                holdToken: .random(), replayed: false)
        }
    }

    public func confirm(_ request: ConfirmRequest) async throws -> Sale { throw unsupported }
    public func release(claim: ClaimID, holdToken: HoldToken) async throws -> ClaimStatus { throw unsupported }
    public func extend(claim: ClaimID, holdToken: HoldToken, fence: Fence) async throws -> Lease { throw unsupported }
    public func reapExpired(drop: DropID) async throws -> ReapReport { throw unsupported }
    public func status(of claim: ClaimID) async throws -> ClaimStatus { throw unsupported }
    public func inspect(drop: DropID) async throws -> DropSnapshot {
        try state.withLock { state in
            guard let config = state.configs[drop] else { throw DibsError(.unknownDrop, "no drop") }
            let held = state.held[drop, default: [:]].count
            return DropSnapshot(
                drop: drop, units: config.units, free: max(0, config.units - held), held: held, sold: 0, waitlisted: 0,
                leases: [])
        }
    }
    public func counts(drop: DropID) async throws -> DropSnapshot { try await inspect(drop: drop) }
    public func configuration(of drop: DropID) async throws -> DropConfig {
        guard let config = state.withLock({ $0.configs[drop] }) else { throw DibsError(.unknownDrop, "no drop") }
        return config
    }
    public func answeredKeys(drop: DropID) async throws -> Set<IdempotencyKey> { throw unsupported }
    public func reschedule(drop: DropID, opensAt: Timestamp, closesAt: Timestamp?) async throws -> DropConfig {
        throw unsupported
    }

    private var unsupported: DibsError { DibsError(.internalError, "the racy store only claims") }
}
