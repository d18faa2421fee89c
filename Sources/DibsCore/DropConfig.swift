/// How a drop hands out its units.
public enum DropMode: String, Sendable, Hashable, CaseIterable {
    /// Each claim is answered at once: held, waitlisted or sold out.
    case firstCome = "first-come"
    /// Claims are entries during the window; winners are drawn afterwards.
    case draw
}

/// A drop's settings, validated on construction so that no store sees an impossible drop.
public struct DropConfig: Sendable, Hashable {
    /// The largest drop Dibs accepts.
    public static let maximumUnits = 1_000_000
    /// The shortest and longest hold a winner can be given to pay.
    public static let holdTTLRange: ClosedRange<Duration> = .seconds(1) ... .seconds(3600)
    /// How long a winner has to pay unless the drop says otherwise.
    public static let defaultHoldTTL: Duration = .seconds(120)

    /// The drop's id.
    public let id: DropID
    /// How many units are for sale (slots `0 ..< units`).
    public let units: Int
    /// How long a held unit stays reserved for its winner.
    public let holdTTL: Duration
    /// How many live claims (held, waitlisted or entered, confirmed) one shopper may have.
    public let perUserLimit: Int
    /// How many claims may wait for a unit to come back once every unit is held; beyond
    /// it a claim is answered "sold out" (no unit is free, so that is true).
    public let waitlistCapacity: Int
    /// First-come or draw.
    public let mode: DropMode
    /// When claims start being accepted.
    public let opensAt: Timestamp
    /// When claims stop being accepted; `nil` for a drop that stays open.
    public let closesAt: Timestamp?

    /// Validates and makes a drop configuration.
    ///
    /// - Parameters:
    ///   - waitlistCapacity: defaults to `units`, so at most twice as many shoppers as
    ///     units are ever kept waiting on an answer.
    public init(
        id: DropID,
        units: Int,
        holdTTL: Duration = DropConfig.defaultHoldTTL,
        perUserLimit: Int = 1,
        waitlistCapacity: Int? = nil,
        mode: DropMode = .firstCome,
        opensAt: Timestamp,
        closesAt: Timestamp? = nil
    ) throws(DibsError) {
        guard (1...Self.maximumUnits).contains(units) else {
            throw DibsError(.invalidInput, "units must be between 1 and \(Self.maximumUnits), got \(units)")
        }
        guard Self.holdTTLRange.contains(holdTTL) else {
            throw DibsError(.invalidInput, "the hold TTL must be between 1 s and 1 h, got \(holdTTL)")
        }
        guard perUserLimit >= 1 else {
            throw DibsError(.invalidInput, "the per-user limit must be at least 1, got \(perUserLimit)")
        }
        let capacity = waitlistCapacity ?? units
        guard (0...Self.maximumUnits).contains(capacity) else {
            throw DibsError(
                .invalidInput, "the waitlist capacity must be between 0 and \(Self.maximumUnits), got \(capacity)")
        }
        if let closesAt, closesAt <= opensAt {
            throw DibsError(.invalidInput, "a drop must close after it opens")
        }
        self.id = id
        self.units = units
        self.holdTTL = holdTTL
        self.perUserLimit = perUserLimit
        self.waitlistCapacity = capacity
        self.mode = mode
        self.opensAt = opensAt
        self.closesAt = closesAt
    }

    /// The same drop with another claim window (an operator opening or closing it).
    public func rescheduled(opensAt: Timestamp, closesAt: Timestamp?) throws(DibsError) -> DropConfig {
        try DropConfig(
            id: id, units: units, holdTTL: holdTTL, perUserLimit: perUserLimit, waitlistCapacity: waitlistCapacity,
            mode: mode, opensAt: opensAt, closesAt: closesAt)
    }

    /// Whether claims are accepted at `time`, and if not, why.
    public func window(at time: Timestamp) -> ClaimRejection? {
        if time < opensAt { return .notOpen }
        if let closesAt, time >= closesAt { return .closed }
        return nil
    }
}
