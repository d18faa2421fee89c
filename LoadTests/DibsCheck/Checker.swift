/// Checks a claim history against the model of an N-permit semaphore with a per-user limit
/// and strictly increasing fences on each unit (DESIGN.md, invariants 1, 3 and 4, without releases or
/// expiries). Pure, O(n log n), and exact: it accepts a history if and only if the history
/// is linearizable (validated against `ExhaustiveSearch`).
///
/// Why the rules below are exact: answers that do not change the state (sold out, limit
/// reached, an unanswered claim that did nothing) can be placed as late as possible, at their
/// response, where the most units are taken. Without releases a unit is granted once, so
/// fence order binds nothing and each grant can take effect at its invoke: the grants that
/// can come before a time t are those sent by then. An unanswered claim may take effect at
/// any time after its invoke, on a unit no grant uses, within its shopper's limit.
public enum Checker {
    /// Checks the history; an empty list means it is linearizable. With releases or expiries
    /// the check is sound rather than exact (see `LeaseWitness`), and runs twice: with every
    /// expiry free to fall anywhere after its grant was sent (the safety check, whatever the
    /// clocks do), then, if that found nothing, with the expiry windows as recorded; what the
    /// second finds is marked as depending on the clocks.
    public static func check(_ history: History) -> [Violation] {
        guard history.operations.contains(where: { $0.result.endsLease }) else { return checkClaims(history) }
        let safety = LeaseWitness.check(history.withExpiriesUnbounded())
        // Timing findings only when the safety check found nothing: they would mostly repeat it.
        guard safety.isEmpty else { return safety }
        return LeaseWitness.check(history).map { $0.dependingOnClocks() }
    }

    /// The exact check of a history without releases or expiries.
    static func checkClaims(_ history: History) -> [Violation] {
        var violations: [Violation] = []
        let grants = history.operations.compactMap { operation -> Grant? in
            guard case .held(let unit, let fence) = operation.result, let response = operation.response else {
                return nil
            }
            return Grant(operation: operation, unit: unit, fence: fence, response: response)
        }.sorted { $0.fence < $1.fence }

        // Units exist and are granted once; fences are unique.
        var grantOfUnit: [Int: Grant] = [:]
        for grant in grants {
            if grant.unit < 0 || grant.unit >= history.units {
                violations.append(
                    Violation(
                        .singleLease, "unit \(grant.unit) does not exist in a \(history.units)-unit drop",
                        [grant.operation]))
            } else if let first = grantOfUnit[grant.unit] {
                violations.append(
                    Violation(.singleLease, "unit \(grant.unit) was granted twice", [first.operation, grant.operation]))
            } else {
                grantOfUnit[grant.unit] = grant
            }
        }
        for (a, b) in zip(grants, grants.dropFirst()) where a.fence == b.fence {
            violations.append(Violation(.fenceOrder, "two grants share fence \(a.fence)", [a.operation, b.operation]))
        }

        // Fence order agrees with real time on each unit (a unit granted twice is caught
        // above); a grant may take effect from its invoke on.
        violations += fenceOrderAgainstRealTime(grants)
        let byInvoke = grants.sorted { $0.operation.invoke < $1.operation.invoke }
        let earliestPoint = byInvoke.map(\.operation.invoke)

        // Per-user limit.
        var grantsOfShopper: [String: [Grant]] = [:]
        var earliestOfShopper: [String: [Int64]] = [:]
        for grant in byInvoke {
            grantsOfShopper[grant.operation.shopper, default: []].append(grant)
            earliestOfShopper[grant.operation.shopper, default: []].append(grant.operation.invoke)
        }
        for (shopper, held) in grantsOfShopper where held.count > history.perUserLimit {
            violations.append(
                Violation(
                    .perUserLimit, "\(shopper) holds \(held.count) units with a limit of \(history.perUserLimit)",
                    Array(held.prefix(history.perUserLimit + 1).map(\.operation))))
        }

        // Unanswered claims that may take effect: on units no grant uses, within limits.
        let spareUnits = max(0, history.units - grantOfUnit.count)
        let unknowns = history.operations.filter { $0.result == .unknown }
        var unknownInvokes: [String: [Int64]] = [:]
        for operation in unknowns { unknownInvokes[operation.shopper, default: []].append(operation.invoke) }
        for key in unknownInvokes.keys { unknownInvokes[key]!.sort() }

        /// How many grants can come before an answer given at `time` (an operation sent at the
        /// very instant another answered is concurrent with it, so it may come first).
        func grantsBefore(_ time: Int64) -> Int { firstIndex(in: earliestPoint) { $0 > time } }

        // Limit answers first: each says how many of its shopper's unanswered claims must
        // have taken effect; a shopper's earliest ones are always the best to pick.
        var mandatory: [String: Int] = [:]
        var limitAnswers: [Operation] = []
        for operation in history.operations where operation.result == .limitReached {
            guard let response = operation.response else { continue }
            let own = grantsOfShopper[operation.shopper] ?? []
            let ownBefore = firstIndex(in: earliestOfShopper[operation.shopper] ?? []) { $0 > response }
            let room = max(0, history.perUserLimit - own.count)
            let ownUnknown = firstIndex(in: unknownInvokes[operation.shopper] ?? []) { $0 > response }
            let needed = max(0, history.perUserLimit - ownBefore)
            if needed > min(room, spareUnits, ownUnknown) {
                violations.append(
                    Violation(
                        .falseLimit,
                        "\(operation.shopper) was told the limit (\(history.perUserLimit)) was reached while holding at most \(ownBefore + min(room, spareUnits, ownUnknown))",
                        [operation] + own.map(\.operation)))
            } else if needed > 0 {
                mandatory[operation.shopper] = max(mandatory[operation.shopper] ?? 0, needed)
                limitAnswers.append(operation)
            }
        }
        let mandatoryTotal = mandatory.values.reduce(0, +)
        if mandatoryTotal > spareUnits {
            violations.append(
                Violation(
                    .falseLimit,
                    "limit answers need \(mandatoryTotal) unanswered claims to have taken units, but only \(spareUnits) units were left for them",
                    limitAnswers + unknowns.filter { mandatory[$0.shopper] != nil }))
        }

        // The unanswered claims taken to have taken effect: the mandatory ones, then the
        // earliest others, within each shopper's room and the spare units. Picking the
        // earliest first gives the most takers before every instant at once.
        var effective: [Int64] = []
        var candidates: [Int64] = []
        for (shopper, invokes) in unknownInvokes {
            let room = max(0, history.perUserLimit - (grantsOfShopper[shopper]?.count ?? 0))
            let required = min(mandatory[shopper] ?? 0, room)
            effective += invokes.prefix(required)
            candidates += invokes.dropFirst(required).prefix(max(0, room - required))
        }
        candidates.sort()
        effective += candidates.prefix(max(0, spareUnits - min(spareUnits, effective.count)))
        effective.sort()

        for operation in history.operations where operation.result == .soldOut {
            guard let response = operation.response else { continue }
            let granted = grantsBefore(response)
            let taken = granted + min(spareUnits, firstIndex(in: effective) { $0 > response })
            if taken < history.units {
                let witnesses =
                    [operation] + byInvoke.prefix(granted).map(\.operation)
                    + unknowns.filter { $0.invoke <= response }.prefix(spareUnits)
                violations.append(
                    Violation(
                        .falseSoldOut,
                        "answered sold out while at most \(taken) of \(history.units) units could have been taken",
                        witnesses))
            }
        }
        violations += checkSales(history, grants: grants)
        return violations
    }

    /// Fence order agrees with real time on each unit: a lease answered before a lease of
    /// its unit with a lower fence was even sent came first, so it cannot have the higher fence.
    static func fenceOrderAgainstRealTime(_ grants: [Grant]) -> [Violation] {
        var violations: [Violation] = []
        var latestOfUnit: [Int: Grant] = [:]  // the lower-fence grant sent last, per unit
        for grant in grants {  // in fence order
            if let earlier = latestOfUnit[grant.unit], earlier.operation.invoke > grant.response {
                violations.append(
                    Violation(
                        .fenceOrder,
                        "fence \(grant.fence) of unit \(grant.unit) was answered before the claim that got fence \(earlier.fence) was even sent",
                        [grant.operation, earlier.operation]))
            }
            if latestOfUnit[grant.unit].map({ $0.operation.invoke < grant.operation.invoke }) ?? true {
                latestOfUnit[grant.unit] = grant
            }
        }
        return violations
    }

    /// The sale rules, which hold whatever releases or expiries happened: a unit is sold
    /// once, a sold unit is never leased again, and a lease is not confirmed once a newer
    /// lease of its unit was handed out.
    static func checkSales(_ history: History, grants: [Grant]) -> [Violation] {
        var violations: [Violation] = []
        var saleOfUnit: [Int: Operation] = [:]
        var fenceOfSale: [Int: Int64] = [:]
        var grantsOfUnit: [Int: [Grant]] = [:]
        for grant in grants { grantsOfUnit[grant.unit, default: []].append(grant) }
        var earliestOfLease: [LeaseID: Int64] = [:]
        for grant in grants { earliestOfLease[LeaseID(unit: grant.unit, fence: grant.fence)] = grant.operation.invoke }
        for operation in history.operations {
            guard case .confirmed(let unit, let fence) = operation.result, let response = operation.response else {
                continue
            }
            if unit < 0 || unit >= history.units {
                violations.append(
                    Violation(.soldOnce, "unit \(unit) does not exist in a \(history.units)-unit drop", [operation]))
                continue
            }
            if let earliest = earliestOfLease[LeaseID(unit: unit, fence: fence)] {
                if response < earliest {
                    violations.append(
                        Violation(
                            .staleFence,
                            "fence \(fence) of unit \(unit) was confirmed before it could have been granted",
                            [operation] + (grantsOfUnit[unit] ?? []).filter { $0.fence == fence }.map(\.operation)))
                }
            } else {
                violations.append(
                    Violation(
                        .staleFence,
                        "fence \(fence) of unit \(unit) was confirmed, but no answered claim was granted it",
                        [operation]))
            }
            if let first = saleOfUnit[unit], fenceOfSale[unit] != fence {
                violations.append(Violation(.soldOnce, "unit \(unit) was sold twice", [first, operation]))
            } else if saleOfUnit[unit] == nil {
                saleOfUnit[unit] = operation
                fenceOfSale[unit] = fence
            }
            for grant in grantsOfUnit[unit] ?? [] where grant.fence > fence {
                if grant.response < operation.invoke {
                    violations.append(
                        Violation(
                            .staleFence,
                            "fence \(fence) of unit \(unit) was confirmed after fence \(grant.fence) had been handed out",
                            [operation, grant.operation]))
                }
                if response < grant.operation.invoke {
                    violations.append(
                        Violation(
                            .leasedAfterSale, "unit \(unit) was leased again (fence \(grant.fence)) after it was sold",
                            [operation, grant.operation]))
                }
            }
        }
        return violations
    }

    struct Grant: Hashable {
        let operation: Operation
        let unit: Int
        let fence: Int64
        let response: Int64
    }

    /// The first index whose element satisfies `predicate` (which must be monotone), or count.
    static func firstIndex(in sorted: [Int64], where predicate: (Int64) -> Bool) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if predicate(sorted[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

/// A broken invariant and the operations that witness it.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    /// Which invariant.
    public enum Invariant: String, Sendable, Hashable {
        case singleLease = "single lease per unit"
        case fenceOrder = "fences strictly increasing"
        case perUserLimit = "per-user limit"
        case falseSoldOut = "no sold out while a unit was free"
        case falseLimit = "no limit answer below the limit"
        case soldOnce = "a unit is sold at most once"
        case leasedAfterSale = "a sold unit is never leased again"
        case staleFence = "a stale fence is never accepted"
        case leaseOverlap = "no two leases on a unit overlap"
        case expiredAccepted = "an expired lease is never confirmed or released"
    }

    public let invariant: Invariant
    public let explanation: String
    public let witnesses: [Operation]
    /// Found only with the expiries where the clock mapping puts them: a timing finding, not
    /// a safety one (which holds whatever the clocks do).
    public private(set) var dependsOnClocks = false

    init(_ invariant: Invariant, _ explanation: String, _ witnesses: [Operation]) {
        self.invariant = invariant
        self.explanation = explanation
        self.witnesses = witnesses
    }

    func dependingOnClocks() -> Violation {
        var violation = self
        violation.dependsOnClocks = true
        return violation
    }

    public var description: String {
        (dependsOnClocks ? "[timing] " : "") + "\(invariant.rawValue): \(explanation)\n"
            + witnesses.map { "  \($0)" }.joined(separator: "\n")
    }
}
