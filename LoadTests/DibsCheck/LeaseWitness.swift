/// The check of histories with releases and expiries, where units come back. Exactness is
/// out of reach in O(n log n) here (a release both frees a unit for a sold-out answer and
/// for the shopper's limit), so this check is sound instead: it accepts a history only
/// after building a linearization and replaying it through `ClaimModel`, so it never accepts
/// a history the exhaustive search rejects. The linearization it builds favours the answers
/// that need units taken: grants as early as their invoke and the previous lease on their
/// unit allow, releases and expiries as late as their windows and the next lease allow,
/// unanswered claims taking spare units where their shopper has room, and each sold-out or
/// limit answer where the count it needs is highest. Rules that are necessary on their own
/// come first and give the short explanations; the replay's first failure is reported only
/// when none of them fired.
enum LeaseWitness {
    static func check(_ history: History) -> [Violation] {
        var builder = Builder(history)
        let necessary = builder.necessaryViolations()
        if !necessary.isEmpty { return necessary }
        guard let first = builder.replay() else { return [] }
        // Two repairs, each granting a lease later (the next lease on its unit no earlier), then trying
        // again; the first failure stands if they do not help. A limit answer that came while
        // a lease of its shopper was being handed on keeps that lease alive until the answer;
        // a grant to a shopper still at the limit waits until one of their leases could end.
        var failure = first
        for _ in 0..<25 {
            let repaired: Bool
            switch failure.operation.result {
            case .limitReached: repaired = builder.keepAlive(for: failure.operation)
            case .held: repaired = builder.waitForRoom(failure.operation)
            default: repaired = false
            }
            guard repaired else { break }
            guard let next = builder.replay() else { return [] }
            if next.operation == failure.operation { break }
            failure = next
        }
        return [first.violation]
    }

    struct Lease {
        let grant: Operation
        let unit: Int
        let fence: Int64
        var confirms: [Operation] = []
        var release: Operation?
        var expiry: Operation?
        var previous: Int?
        var next: Int?
        /// Where the linearization puts its grant, its first sale, and its end (by release or
        /// expiry; `nil`: it never ends), which cannot come before `endLower`.
        var effect: Int64 = 0
        var soldAt: Int64?
        var end: SortKey?
        var endLower: Int64 = .max
        var endUpper: Int64 = .max
        var endRank = SortKey.release
    }

    struct Step {
        let key: SortKey
        let operation: Operation
        /// The unit an unanswered claim takes; `nil` for an operation applied as answered.
        var takes: Int?
        /// What it does to the count of units taken, and the shopper whose count it moves.
        var delta = 0
        var owner: String
    }

    struct Builder {
        let history: History
        var leases: [Lease] = []
        var leaseOf: [LeaseID: Int] = [:]
        var orphans: [Operation] = []

        init(_ history: History) {
            self.history = history
            let grants = history.operations.filter { operation in
                if case .held = operation.result { operation.response != nil } else { false }
            }
            for grant in grants.sorted(by: { $0.result.heldFence! < $1.result.heldFence! }) {
                guard case .held(let unit, let fence) = grant.result else { continue }
                let id = LeaseID(unit: unit, fence: fence)
                if leaseOf[id] == nil {
                    leaseOf[id] = leases.count
                    leases.append(Lease(grant: grant, unit: unit, fence: fence))
                }
            }
            for operation in history.operations {
                guard let id = operation.result.lease else { continue }
                guard let index = leaseOf[id] else {
                    // Confirms are checkSales's; an expiry of a lease no answer named does nothing
                    // if it comes late enough, so it goes last.
                    if !operation.result.isConfirm { orphans.append(operation) }
                    continue
                }
                switch operation.result {
                case .confirmed: leases[index].confirms.append(operation)
                case .released where leases[index].release == nil: leases[index].release = operation
                case .released: orphans.append(operation)  // a second release of one lease
                case .expired where leases[index].expiry == nil: leases[index].expiry = operation
                default: break
                }
            }
            var lastOnUnit: [Int: Int] = [:]
            for index in leases.indices {
                if let previous = lastOnUnit[leases[index].unit] {
                    leases[index].previous = previous
                    leases[index].next = nil
                    leases[previous].next = index
                }
                lastOnUnit[leases[index].unit] = index
            }
        }

        /// Rules each of which alone makes a history illegal.
        func necessaryViolations() -> [Violation] {
            var violations: [Violation] = []
            let grants = history.operations.compactMap { operation -> Checker.Grant? in
                guard case .held(let unit, let fence) = operation.result, let response = operation.response else {
                    return nil
                }
                return Checker.Grant(operation: operation, unit: unit, fence: fence, response: response)
            }.sorted { $0.fence < $1.fence }
            for grant in grants where grant.unit < 0 || grant.unit >= history.units {
                violations.append(
                    Violation(
                        .singleLease, "unit \(grant.unit) does not exist in a \(history.units)-unit drop",
                        [grant.operation]))
            }
            for (a, b) in zip(grants, grants.dropFirst()) where a.fence == b.fence {
                violations.append(
                    Violation(.fenceOrder, "two grants share fence \(a.fence)", [a.operation, b.operation]))
            }
            violations += Checker.fenceOrderAgainstRealTime(grants)
            for operation in orphans where operation.result.verb == "released" {
                violations.append(
                    Violation(.staleFence, "accepted for a lease that was never handed out (or twice)", [operation]))
            }
            for lease in leases {
                if let next = lease.next.map({ leases[$0] }) {
                    let again = "unit \(lease.unit) was leased again (fence \(next.fence))"
                    if !lease.confirms.isEmpty || (lease.release == nil && lease.expiry == nil) {
                        let why =
                            lease.confirms.isEmpty
                            ? "fence \(lease.fence) had been neither released nor expired"
                            : "fence \(lease.fence) was sold"
                        violations.append(
                            Violation(
                                lease.confirms.isEmpty ? .leaseOverlap : .leasedAfterSale, "\(again) though \(why)",
                                [lease.grant, next.grant] + lease.confirms.prefix(1)))
                    } else if let release = lease.release, release.invoke > next.grant.response! {
                        violations.append(
                            Violation(
                                .staleFence,
                                "fence \(lease.fence) of unit \(lease.unit) was released after fence \(next.fence) had been handed out",
                                [release, next.grant, lease.grant]))
                    } else if lease.release == nil, let expiry = lease.expiry, expiry.invoke > next.grant.response! {
                        violations.append(
                            Violation(
                                .leaseOverlap,
                                "\(again) before fence \(lease.fence) could have expired",
                                [lease.grant, expiry, next.grant])
                        )
                    }
                }
                if let expiry = lease.expiry, let expiryLatest = expiry.response {
                    for step in lease.confirms + (lease.release.map { [$0] } ?? [])
                    where max(step.invoke, lease.grant.invoke) > expiryLatest {
                        violations.append(
                            Violation(
                                .expiredAccepted,
                                "fence \(lease.fence) of unit \(lease.unit) was \(step.result.verb) after it had expired",
                                [step, expiry, lease.grant]))
                    }
                }
            }
            let answeredGrants = grants.filter { $0.unit >= 0 && $0.unit < history.units }
            return violations + Checker.checkSales(history, grants: answeredGrants)
        }

        /// Builds the linearization and replays it; the first step that cannot take effect.
        /// Grants that must not take effect earlier than given (set by `keepAlive`).
        var notBefore: [Int: Int64] = [:]

        /// Delays the grant that ends a lease of the answer's shopper just before the answer
        /// was sent, so that the lease is live during the answer; false when none can.
        mutating func keepAlive(for answer: Operation) -> Bool {
            for lease in leases where lease.grant.shopper == answer.shopper && lease.effect <= answer.response! {
                guard let nextIndex = lease.next, let end = lease.end, end.rank == SortKey.grant,
                    lease.endUpper >= answer.invoke, leases[nextIndex].effect < answer.invoke,
                    answer.invoke <= leases[nextIndex].grant.response!
                else { continue }
                notBefore[nextIndex] = answer.invoke
                return true
            }
            return false
        }

        /// Delays a grant that found its shopper at the limit until enough of the shopper's
        /// earlier leases could have ended; false when its window does not reach that far.
        mutating func waitForRoom(_ grant: Operation) -> Bool {
            guard case .held(let unit, let fence) = grant.result, let index = leaseOf[LeaseID(unit: unit, fence: fence)]
            else { return false }
            let effect = leases[index].effect
            let live = leases.filter {
                $0.grant.shopper == grant.shopper && $0.fence < fence && $0.effect <= effect
                    && ($0.end.map { $0.time >= effect } ?? true)
            }
            let needed = live.count - history.perUserLimit + 1
            let ends = live.filter { $0.soldAt == nil && $0.end != nil }.map(\.endLower).sorted()
            guard needed > 0, ends.count >= needed, ends[needed - 1] > effect,
                ends[needed - 1] <= grant.response!
            else { return false }
            notBefore[index] = max(notBefore[index] ?? .min, ends[needed - 1])
            return true
        }

        mutating func replay() -> (violation: Violation, operation: Operation)? {
            placeGrants()
            placeEnds()
            // Again until nothing moves: a grant delayed for one shopper moves the end of the
            // previous lease on its unit later, which can leave another shopper's grant, placed
            // earlier in the pass, before the end that made room for it.
            for _ in 0..<8 {
                let before = leases.map { ($0.effect, $0.end) }
                makeRoomForShoppers()
                if leases.map({ ($0.effect, $0.end) }).elementsEqual(before, by: { $0 == $1 }) { break }
            }
            var steps: [Step] = []
            for lease in leases {
                steps.append(
                    Step(
                        key: SortKey(time: lease.effect, rank: SortKey.grant, fence: lease.fence, id: 1),
                        operation: lease.grant, delta: 1, owner: lease.grant.shopper))
                for confirm in lease.confirms {
                    steps.append(
                        Step(
                            key: SortKey(
                                time: max(confirm.invoke, lease.effect), rank: SortKey.confirm, fence: 0, id: confirm.id
                            ),
                            operation: confirm, owner: lease.grant.shopper))
                }
                if let end = lease.end, let step = lease.release ?? lease.expiry {
                    steps.append(Step(key: end, operation: step, delta: -1, owner: lease.grant.shopper))
                }
                if let expiry = lease.expiry, lease.release != nil || lease.soldAt != nil {
                    // Already released or sold: the expiry does nothing if it comes after.
                    let after = lease.end?.time ?? lease.soldAt!
                    let point = min(max(after, expiry.invoke), expiry.response ?? .max)
                    steps.append(
                        Step(
                            key: SortKey(time: point, rank: SortKey.expiry, fence: 0, id: expiry.id), operation: expiry,
                            owner: lease.grant.shopper))
                }
            }
            for operation in orphans {
                let late = operation.result.endsLease && operation.result.verb == "expired"
                steps.append(
                    Step(
                        key: SortKey(
                            time: late ? operation.response ?? .max : operation.invoke, rank: SortKey.expiry, fence: 0,
                            id: operation.id), operation: operation, owner: operation.shopper))
            }
            steps += unknownTakes(steps)
            let ordered = steps.sorted { $0.key < $1.key }
            let placed = placeAnswers(ordered)
            return run(ordered, answers: placed.answers, soldOutBest: placed.soldOutBest)
        }

        /// Grants as early as their invoke and their unit's previous lease allow.
        mutating func placeGrants() {
            for index in leases.indices {
                var earliest = max(leases[index].grant.invoke, notBefore[index] ?? .min)
                if let previous = leases[index].previous { earliest = max(earliest, freedAt(previous)) }
                leases[index].effect = min(earliest, leases[index].grant.response!)
                leases[index].soldAt = leases[index].confirms.map { max($0.invoke, leases[index].effect) }.min()
            }
        }

        /// Releases and expiries as late as their window allows, but no later than the next
        /// lease on their unit, which they then hand the unit to at the same instant. A sold
        /// lease does not end (a release of it fails in the replay, as it must).
        mutating func placeEnds() {
            for index in leases.indices {
                let lease = leases[index]
                let next = lease.next.map { leases[$0] }
                let rank: Int
                let lower: Int64
                let upper: Int64
                if let release = lease.release {
                    (rank, lower, upper) = (SortKey.release, max(release.invoke, lease.effect), release.response!)
                    if let soldAt = lease.soldAt {
                        leases[index].end = SortKey(time: max(lower, soldAt), rank: rank, fence: 0, id: release.id)
                        continue
                    }
                } else if let expiry = lease.expiry, lease.soldAt == nil {
                    (rank, lower, upper) = (SortKey.expiry, max(expiry.invoke, lease.effect), expiry.response ?? .max)
                } else {
                    continue
                }
                leases[index].endLower = lower
                leases[index].endUpper = upper
                leases[index].endRank = rank
                let id = (lease.release ?? lease.expiry)!.id
                if let next, next.effect <= upper, max(lower, next.effect) == next.effect {
                    leases[index].end = SortKey(time: next.effect, rank: SortKey.grant, fence: next.fence, id: 0)
                } else if let next, next.effect <= upper {
                    leases[index].end = SortKey(time: lower, rank: rank, fence: 0, id: id)
                } else {
                    leases[index].end = SortKey(time: max(lower, upper), rank: rank, fence: 0, id: id)
                }
            }
        }

        /// Where a shopper would be over the limit when granted a unit, ends that could come
        /// by then are moved to just before the grant; if they cannot come that early, the
        /// grant waits for them when its window and its unit allow.
        mutating func makeRoomForShoppers() {
            var ofShopper: [String: [Int]] = [:]
            for index in leases.indices { ofShopper[leases[index].grant.shopper, default: []].append(index) }
            // In a fixed order (shoppers by name, their grants by time), so the check is the same every run.
            for shopper in ofShopper.keys.sorted() where ofShopper[shopper]!.count > history.perUserLimit {
                let indices = ofShopper[shopper]!.sorted {
                    (leases[$0].effect, leases[$0].fence) < (leases[$1].effect, leases[$1].fence)
                }
                for (position, index) in indices.enumerated() {
                    let earlier = indices.prefix(position)
                    // Granted by then (a delay may have moved a grant past this one) and not ended.
                    func live(at key: SortKey) -> [Int] {
                        earlier.filter { leases[$0].effect <= key.time && (leases[$0].end.map { $0 > key } ?? true) }
                    }
                    let at = SortKey(time: leases[index].effect, rank: SortKey.grant, fence: leases[index].fence, id: 0)
                    let needed = live(at: at).count - history.perUserLimit + 1
                    guard needed > 0 else { continue }
                    let movable = live(at: at).filter { leases[$0].end != nil && leases[$0].soldAt == nil }
                        .sorted { leases[$0].endLower < leases[$1].endLower }
                    guard movable.count >= needed else { continue }
                    let point = max(leases[index].effect, leases[movable[needed - 1]].endLower)
                    if point > leases[index].effect && !delay(index, to: point) { continue }
                    // End, just before the grant, those still live then that can end by then.
                    let grantKey = SortKey(time: point, rank: SortKey.grant, fence: leases[index].fence, id: 0)
                    let ending = live(at: grantKey).filter {
                        leases[$0].end != nil && leases[$0].soldAt == nil && leases[$0].endLower <= point
                    }.sorted { leases[$0].endLower < leases[$1].endLower }
                    for other in ending.prefix(needed) {
                        leases[other].end = SortKey(
                            time: point, rank: SortKey.grant, fence: leases[index].fence, id: -1 - other)
                    }
                }
            }
        }

        /// Moves lease `index`'s grant later, to `point`, if its window and the next lease on
        /// its unit allow; its unit's previous lease and its own end follow.
        mutating func delay(_ index: Int, to point: Int64) -> Bool {
            let old = leases[index].effect
            guard point <= leases[index].grant.response!, leases[index].next.map({ point <= leases[$0].effect }) ?? true
            else { return false }
            leases[index].effect = point
            leases[index].soldAt = leases[index].confirms.map { max($0.invoke, point) }.min()
            if let previous = leases[index].previous, let end = leases[previous].end,
                end == SortKey(time: old, rank: SortKey.grant, fence: leases[index].fence, id: 0)
            {
                let upper = leases[previous].endUpper
                leases[previous].end =
                    upper >= point
                    ? SortKey(time: point, rank: SortKey.grant, fence: leases[index].fence, id: 0)
                    : SortKey(time: upper, rank: leases[previous].endRank, fence: 0, id: -1)
            }
            if let end = leases[index].end, end.time < point {
                leases[index].end = SortKey(time: point, rank: leases[index].endRank, fence: 0, id: end.id)
            }
            return true
        }

        /// When lease `index` could first be over (for the next lease on its unit to begin).
        func freedAt(_ index: Int) -> Int64 {
            let lease = leases[index]
            if !lease.confirms.isEmpty { return .max }
            if let release = lease.release { return max(release.invoke, lease.effect) }
            if let expiry = lease.expiry { return max(expiry.invoke, lease.effect) }
            return .max
        }

        /// A key after everything at `key`'s instant.
        static func rightAfter(_ key: SortKey, id: Int) -> SortKey {
            key.time == .min ? key : SortKey(time: key.time, rank: SortKey.afterAll, fence: 0, id: id)
        }

        /// Unanswered claims taking units that are free for good (never granted, or whose last
        /// lease ended), earliest first, for shoppers with room from then on.
        func unknownTakes(_ steps: [Step]) -> [Step] {
            var freeFrom: [(unit: Int, from: SortKey)] = []
            var lastOnUnit: [Int: Lease] = [:]
            for lease in leases { lastOnUnit[lease.unit] = lease }
            let always = SortKey(time: .min, rank: 0, fence: 0, id: 0)
            for unit in 0..<history.units {
                guard let last = lastOnUnit[unit] else {
                    freeFrom.append((unit, always))
                    continue
                }
                if let end = last.end, last.soldAt == nil, end.time < .max { freeFrom.append((unit, end)) }
            }
            freeFrom.sort { $0.from > $1.from }  // the soonest free last, to pop
            let unknowns = history.operations.filter { $0.result == .unknown }.sorted { $0.invoke < $1.invoke }
            guard !unknowns.isEmpty else { return [] }
            let shoppers = Set(unknowns.map(\.shopper))
            var ofShopper: [String: [(key: SortKey, delta: Int)]] = [:]
            for step in steps where step.delta != 0 && shoppers.contains(step.owner) {
                ofShopper[step.owner, default: []].append((step.key, step.delta))
            }
            for key in ofShopper.keys { ofShopper[key]!.sort { $0.key < $1.key } }
            var takes: [Step] = []
            var tookOfShopper: [String: Int] = [:]
            for operation in unknowns {
                guard let (unit, from) = freeFrom.last else { break }
                // The first place from the claim's invoke on where its shopper has room for good.
                let events = ofShopper[operation.shopper] ?? []
                var after = [0]  // the count after each event
                for event in events { after.append(after.last! + event.delta) }
                var suffixPeak = after
                for index in stride(from: after.count - 2, through: 0, by: -1) {
                    suffixPeak[index] = max(suffixPeak[index], suffixPeak[index + 1])
                }
                let room = history.perUserLimit - tookOfShopper[operation.shopper, default: 0]
                let invokeKey = SortKey(
                    time: operation.invoke, rank: SortKey.unknownTake, fence: 0, id: operation.id)
                guard
                    let position = suffixPeak.indices.first(where: { position in
                        suffixPeak[position] < room
                            && (position == events.count || events[position].key > invokeKey)
                    })
                else { continue }
                var key = invokeKey
                if position > 0 { key = max(key, Self.rightAfter(events[position - 1].key, id: operation.id)) }
                key = max(key, Self.rightAfter(from, id: operation.id))
                freeFrom.removeLast()
                tookOfShopper[operation.shopper, default: 0] += 1
                takes.append(Step(key: key, operation: operation, takes: unit, delta: 1, owner: operation.shopper))
            }
            return takes
        }

        /// Sold-out answers where the most units are taken, limit answers where their shopper
        /// holds the most: each as a position in the ordered steps (before step p).
        func placeAnswers(_ ordered: [Step]) -> (
            answers: [(position: Int, operation: Operation)], soldOutBest: [Int: Int]
        ) {
            let times = ordered.map(\.key.time)
            let taken = StepFunction(times: times, deltas: ordered.map(\.delta))
            let limited = Set(history.operations.filter { $0.result == .limitReached }.map(\.shopper))
            var stepsOfShopper: [String: [Int]] = [:]
            for (index, step) in ordered.enumerated() where step.delta != 0 && limited.contains(step.owner) {
                stepsOfShopper[step.owner, default: []].append(index)
            }
            var shopperCounts: [String: StepFunction] = [:]
            var answers: [(position: Int, operation: Operation)] = []
            var soldOutBest: [Int: Int] = [:]
            for operation in history.operations {
                guard let response = operation.response else { continue }
                switch operation.result {
                case .soldOut:
                    let best = taken.best(from: operation.invoke, to: response)
                    soldOutBest[operation.id] = best.value
                    answers.append((best.position, operation))
                case .limitReached:
                    let own = stepsOfShopper[operation.shopper] ?? []
                    if shopperCounts[operation.shopper] == nil {
                        shopperCounts[operation.shopper] = StepFunction(
                            times: own.map { times[$0] }, deltas: own.map { ordered[$0].delta })
                    }
                    let best = shopperCounts[operation.shopper]!.best(from: operation.invoke, to: response)
                    // Between the shopper's steps around that position, no earlier than the invoke.
                    let after = best.position == 0 ? 0 : own[best.position - 1] + 1
                    answers.append((max(after, taken.firstPosition(notBefore: operation.invoke)), operation))
                default: continue
                }
            }
            return (answers, soldOutBest)
        }

        /// Replays the steps in order through the model, each answer at its position; the
        /// first that cannot take effect.
        func run(_ ordered: [Step], answers: [(position: Int, operation: Operation)], soldOutBest: [Int: Int])
            -> (violation: Violation, operation: Operation)?
        {
            let shoppers = Array(Set(history.operations.map(\.shopper))).sorted()
            let shopperIndex = Dictionary(uniqueKeysWithValues: shoppers.enumerated().map { ($1, $0) })
            var model = ClaimModel(units: history.units, perUserLimit: history.perUserLimit, shoppers: shoppers.count)
            let answersAt = Dictionary(grouping: answers, by: \.position)
            for position in 0...ordered.count {
                for (_, operation) in answersAt[position] ?? [] {
                    // Its place lies between the steps around it: it needs a time in its window there.
                    let earliest = position == 0 ? Int64.min : ordered[position - 1].key.time
                    let latest = position == ordered.count ? Int64.max : ordered[position].key.time
                    let fits = earliest <= (operation.response ?? .max) && latest >= operation.invoke
                    if !fits || !model.apply(operation.result, shopper: shopperIndex[operation.shopper]!) {
                        return (
                            explain(operation, model: model, shoppers: shoppers, soldOutBest: soldOutBest), operation
                        )
                    }
                }
                guard position < ordered.count else { break }
                let step = ordered[position]
                let operation = step.operation
                let inWindow = step.key.time >= operation.invoke && step.key.time <= (operation.response ?? .max)
                let shopper = shopperIndex[operation.shopper]!
                let applied =
                    if let unit = step.takes { model.takeUnknown(unit, shopper: shopper) } else {
                        model.apply(operation.result, shopper: shopper)
                    }
                if !inWindow || !applied {
                    return (explain(operation, model: model, shoppers: shoppers, soldOutBest: soldOutBest), operation)
                }
            }
            return nil
        }

        /// A violation for the step that could not take effect, with the operations that show why.
        func explain(_ operation: Operation, model: ClaimModel, shoppers: [String], soldOutBest: [Int: Int])
            -> Violation
        {
            // Each lease the shopper holds or owns, with what ended or sold it, so a finding
            // shows the whole life of the leases that count against the limit.
            func holders(of shopper: String) -> [Operation] {
                model.units.flatMap { state -> [Operation] in
                    switch state {
                    case .held(let fence, let owner), .sold(let fence, let owner):
                        guard shoppers[owner] == shopper, let lease = leases.first(where: { $0.fence == fence }) else {
                            return []
                        }
                        return [lease.grant] + lease.confirms + [lease.release, lease.expiry].compactMap { $0 }
                    case .free: return []
                    }
                }
            }
            switch operation.result {
            case .held(let unit, let fence):
                if case .held(let other, _) = model.units[unit], let holder = leases.first(where: { $0.fence == other })
                {
                    return Violation(
                        .leaseOverlap, "unit \(unit) was leased (fence \(fence)) while fence \(other) still held it",
                        [operation, holder.grant] + (holder.release.map { [$0] } ?? [])
                            + (holder.expiry.map { [$0] } ?? []))
                }
                if model.liveOfShopper[shoppers.firstIndex(of: operation.shopper)!] >= history.perUserLimit {
                    return Violation(
                        .perUserLimit,
                        "\(operation.shopper) was granted a unit while holding or owning \(history.perUserLimit) (the limit)",
                        [operation] + holders(of: operation.shopper))
                }
                return Violation(
                    .fenceOrder, "no order of the grants follows both their fences and real time", [operation])
            case .soldOut:
                let best = soldOutBest[operation.id] ?? 0
                let freed = leases.filter { $0.release != nil || $0.expiry != nil }.suffix(max(0, history.units - best))
                return Violation(
                    .falseSoldOut,
                    "answered sold out while at most \(best) of \(history.units) units could have been taken during the request",
                    [operation] + freed.compactMap { $0.release ?? $0.expiry })
            case .limitReached:
                return Violation(
                    .falseLimit,
                    "\(operation.shopper) was told the limit (\(history.perUserLimit)) was reached while holding fewer throughout",
                    [operation] + leases.filter { $0.grant.shopper == operation.shopper }.map(\.grant))
            case .confirmed(let unit, let fence), .released(let unit, let fence), .expired(let unit, let fence):
                let lease = leaseOf[LeaseID(unit: unit, fence: fence)].map { leases[$0] }
                let context = [lease?.grant, lease?.expiry].compactMap { $0 }
                return Violation(
                    .staleFence,
                    "fence \(fence) of unit \(unit) was \(operation.result.verb) when it was not the unit's live lease",
                    [operation] + context)
            case .unknown:
                return Violation(.singleLease, "an unanswered claim could not take its unit", [operation])
            }
        }
    }
}

extension Operation.Result {
    /// The fence of a grant.
    var heldFence: Int64? {
        if case .held(_, let fence) = self { fence } else { nil }
    }

    var isConfirm: Bool {
        if case .confirmed = self { true } else { false }
    }

    /// What a step on a lease did, for explanations.
    var verb: String {
        switch self {
        case .confirmed: "confirmed"
        case .released: "released"
        case .expired: "expired"
        default: "answered"
        }
    }
}
