/// The sequential specification a history is checked against: N units, each free, held
/// under a fence by a shopper, or sold; on each unit, strictly increasing fences (what a
/// stale writer is fenced off by; across units fences are unique but need not follow real
/// time — Postgres hands one out before its transaction commits); a per-user limit on the
/// units a shopper holds or bought. `ExhaustiveSearch` explores it; `Checker` replays the
/// linearization it builds through it, so an accepted history always has a witness.
struct ClaimModel: Hashable {
    enum UnitState: Hashable {
        case free
        case held(fence: Int64, shopper: Int)
        case sold(fence: Int64, shopper: Int)
    }

    let perUserLimit: Int
    private(set) var units: [UnitState]
    private(set) var liveOfShopper: [Int]
    /// The last fence handed out on each unit.
    private(set) var lastFence: [Int64]
    private(set) var taken = 0

    init(units: Int, perUserLimit: Int, shoppers: Int) {
        self.perUserLimit = perUserLimit
        self.units = Array(repeating: .free, count: units)
        self.lastFence = Array(repeating: .min, count: units)
        self.liveOfShopper = Array(repeating: 0, count: shoppers)
    }

    /// Whether the operation can take effect now; if it can, its effect is applied. An
    /// unanswered claim does nothing here (see `takeUnknown`).
    mutating func apply(_ result: Operation.Result, shopper: Int) -> Bool {
        switch result {
        case .held(let unit, let fence):
            guard units.indices.contains(unit), units[unit] == .free, liveOfShopper[shopper] < perUserLimit,
                fence > lastFence[unit]
            else { return false }
            units[unit] = .held(fence: fence, shopper: shopper)
            liveOfShopper[shopper] += 1
            lastFence[unit] = fence
            taken += 1
        case .soldOut:
            return taken == units.count
        case .limitReached:
            return liveOfShopper[shopper] >= perUserLimit
        case .unknown:
            return true
        case .confirmed(let unit, let fence):
            guard units.indices.contains(unit) else { return false }
            switch units[unit] {
            case .held(fence, let owner): units[unit] = .sold(fence: fence, shopper: owner)
            case .sold(fence, _): break  // the same sale answered again
            default: return false
            }
        case .released(let unit, let fence):
            guard units.indices.contains(unit), case .held(fence, let owner) = units[unit] else { return false }
            free(unit, owner)
        case .expired(let unit, let fence):
            // A lease cannot expire before it was handed out (its unit's grants up to its fence came).
            guard units.indices.contains(unit), fence <= lastFence[unit] else { return false }
            if case .held(fence, let owner) = units[unit] { free(unit, owner) }
        }
        return true
    }

    /// An unanswered claim taking `unit` (its fence unseen, so it is not ordered by fence and
    /// nothing the client did can end it).
    mutating func takeUnknown(_ unit: Int, shopper: Int) -> Bool {
        guard units.indices.contains(unit), units[unit] == .free, liveOfShopper[shopper] < perUserLimit else {
            return false
        }
        units[unit] = .held(fence: .min, shopper: shopper)
        liveOfShopper[shopper] += 1
        taken += 1
        return true
    }

    private mutating func free(_ unit: Int, _ owner: Int) {
        units[unit] = .free
        liveOfShopper[owner] -= 1
        taken -= 1
    }
}
