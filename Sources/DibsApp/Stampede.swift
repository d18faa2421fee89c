public import DibsCore

/// The demo's stampede: `claims` shoppers claim one unit each of a fresh `units`-unit drop,
/// all at once, against one store.
public struct Stampede: Sendable {
    /// What one store answered.
    public struct Report: Sendable {
        public let backend: String
        public let claims: Int
        public let held: Int
        public let waitlisted: Int
        public let soldOut: Int
        public let other: Int
        public let seconds: Double
        /// Held units that are distinct: must equal `held`.
        public let distinctUnits: Int
        /// The units this stampede holds, sorted.
        public let heldUnits: [Int]
        public var claimsPerSecond: Double { Double(claims) / max(seconds, 1e-9) }
    }

    public let claims: Int
    public let units: Int
    /// Claims in flight at once; the rest wait their turn, as behind a server's accept queue.
    public let concurrency: Int
    /// Shopper ids are `prefix-index`, keys `prefix-k-index`: two stampedes with different
    /// prefixes on one drop are different shoppers.
    public let shopperPrefix: String

    /// Makes a stampede of `claims` claims on `units` units.
    public init(claims: Int = 20_000, units: Int = 100, concurrency: Int = 1_000, shopperPrefix: String = "shopper") {
        self.claims = claims
        self.units = units
        self.concurrency = concurrency
        self.shopperPrefix = shopperPrefix
    }

    /// A fresh drop id for a stampede.
    public static func freshDrop() throws -> DropID {
        var generator = SystemRandomNumberGenerator()
        return try DropID("stampede-\(String(generator.next() as UInt32, radix: 36))")
    }

    /// Creates `drop` on `store` (open since a second ago), with `units` units.
    public func createDrop(_ drop: DropID, on store: any LeaseStore) async throws {
        try await store.createDrop(
            DropConfig(id: drop, units: units, opensAt: SystemClock().now().adding(.seconds(-1))))
    }

    /// Creates a fresh drop on `store` and fires the claims at it.
    public func run(on store: any LeaseStore) async throws -> Report {
        let drop = try Self.freshDrop()
        try await createDrop(drop, on: store)
        return try await run(on: store, drop: drop)
    }

    /// Fires the claims at an existing drop.
    public func run(on store: any LeaseStore, drop: DropID) async throws -> Report {
        let prefix = shopperPrefix
        let started = ContinuousClock.now
        let outcomes = try await withThrowingTaskGroup(of: ClaimOutcome.Decision.self) { group in
            var next = 0
            func addClaim() {
                let index = next
                next += 1
                group.addTask {
                    try await store.claim(
                        ClaimRequest(
                            drop: drop, user: UserID("\(prefix)-\(index)"),
                            idempotencyKey: IdempotencyKey("\(prefix)-k-\(index)"))
                    ).decision
                }
            }
            while next < min(concurrency, claims) { addClaim() }
            var decisions: [ClaimOutcome.Decision] = []
            decisions.reserveCapacity(claims)
            while let decision = try await group.next() {
                decisions.append(decision)
                if next < claims { addClaim() }
            }
            return decisions
        }
        let elapsed = ContinuousClock.now - started
        var held: [Int] = []
        var waitlisted = 0
        var soldOut = 0
        for decision in outcomes {
            switch decision {
            case .held(let unit, _, _): held.append(unit)
            case .waitlisted: waitlisted += 1
            case .rejected(.soldOut): soldOut += 1
            default: break
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return Report(
            backend: store.backendName, claims: claims, held: held.count, waitlisted: waitlisted, soldOut: soldOut,
            other: claims - held.count - waitlisted - soldOut, seconds: seconds, distinctUnits: Set(held).count,
            heldUnits: held.sorted())
    }
}
