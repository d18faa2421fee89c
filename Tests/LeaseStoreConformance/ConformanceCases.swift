import DibsCore

/// The conformance suite: every case every `LeaseStore` must pass. Each test target runs
/// `ConformanceCase.allCases` against its store; a case throws `ConformanceFailure` (or the
/// store's own error) when the store breaks the contract.
public enum ConformanceCase: String, CaseIterable, Sendable, CustomStringConvertible {
    case stampedeGivesEachUnitOnce
    case fencesIncrease
    case perUserLimitUnderConcurrency
    case expiredLeaseIsReapedAndClaimable
    case expiryPromotesWaitlist
    case wrongTokenAndStaleFenceAreRefused
    case confirmSellsForGood
    case releaseReturnsTheUnit
    case extendKeepsTheLease
    case idempotencyKeyReplays
    case drawTakesEntries
    case badInputIsRefused
    case rescheduleOpensAndCloses
    case answeredKeysAreTheNotSoldOutOnes
    case everyUnitSoldOnlyOnceEachIs

    public var description: String { rawValue }

    /// Runs the case against the harness's store.
    public func run(_ h: ConformanceHarness) async throws {
        switch self {
        case .stampedeGivesEachUnitOnce: try await verifyStampede(h)
        case .fencesIncrease: try await verifyFencesIncrease(h)
        case .perUserLimitUnderConcurrency: try await verifyPerUserLimit(h)
        case .expiredLeaseIsReapedAndClaimable: try await verifyExpiry(h)
        case .expiryPromotesWaitlist: try await verifyExpiryPromotes(h)
        case .wrongTokenAndStaleFenceAreRefused: try await verifyRefusals(h)
        case .confirmSellsForGood: try await verifyConfirmSells(h)
        case .releaseReturnsTheUnit: try await verifyRelease(h)
        case .extendKeepsTheLease: try await verifyExtend(h)
        case .idempotencyKeyReplays: try await verifyIdempotency(h)
        case .drawTakesEntries: try await verifyDraw(h)
        case .badInputIsRefused: try await verifyBadInput(h)
        case .rescheduleOpensAndCloses: try await verifyReschedule(h)
        case .answeredKeysAreTheNotSoldOutOnes: try await verifyAnsweredKeys(h)
        case .everyUnitSoldOnlyOnceEachIs: try await verifyEveryUnitSold(h)
        }
    }
}

/// Fires `count` claims at once, shopper `i` using key `k-i`, and returns every answer.
func fire(_ h: ConformanceHarness, drop: DropID, count: Int, user: @escaping @Sendable (Int) -> String) async throws
    -> [ClaimOutcome]
{
    try await withThrowingTaskGroup(of: ClaimOutcome.self) { group in
        for index in 0..<count {
            group.addTask { try await h.claim(drop, user: user(index), key: "k-\(index)") }
        }
        var outcomes: [ClaimOutcome] = []
        outcomes.reserveCapacity(count)
        for try await outcome in group { outcomes.append(outcome) }
        return outcomes
    }
}

func verifyStampede(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("stampede", units: 100)
    let outcomes = try await fire(h, drop: drop, count: 5000) { "shopper-\($0)" }
    let held = outcomes.compactMap(\.held)
    try expect(held.count == 100, "5,000 claims on 100 units gave \(held.count) holds, not 100")
    try expect(Set(held.map(\.unit)) == Set(0..<100), "the holds are not on 100 distinct units 0..<100")
    try expect(Set(held.map(\.fence)).count == 100, "two holds share a fence")
    let waitlisted = outcomes.compactMap(\.waitlistPosition)
    let soldOut = outcomes.filter { $0.rejection == .soldOut }.count
    try expect(held.count + waitlisted.count + soldOut == 5000, "an answer was neither held, waitlisted nor sold out")
    try expect(waitlisted.count == 100, "the waitlist (capacity 100) took \(waitlisted.count) claims")
    try expect(waitlisted.sorted() == Array(1...100), "waitlist positions are not 1…100")
    try expect(Set(outcomes.compactMap(\.claim)).count == 5000, "two answers share a claim id")
    try expect(
        outcomes.allSatisfy { ($0.held == nil && $0.waitlistPosition == nil) || $0.holdToken != nil },
        "a held or waitlisted answer came without its hold token")
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(
        snapshot.held == 100 && snapshot.free == 0 && snapshot.sold == 0 && snapshot.waitlisted == 100,
        "inspect after the stampede: \(snapshot.held) held, \(snapshot.free) free, \(snapshot.waitlisted) waitlisted")
    try expect(snapshot.leases.count == 100, "inspect listed \(snapshot.leases.count) leases")
    let counts = try await h.store.counts(drop: drop)
    try expect(
        counts
            == DropSnapshot(
                drop: drop, units: 100, free: 0, held: 100, sold: 0, waitlisted: 100, leases: []),
        "counts after the stampede: \(counts)")
    try expect(Set(snapshot.leases.map(\.unit)).count == 100, "inspect lists \(snapshot.leases.count) leases, not 100")
}

func verifyFencesIncrease(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("fences", units: 3, holdTTL: .seconds(60))
    var last = Fence(0)
    for round in 0..<3 {
        for index in 0..<3 {
            let outcome = try await h.claim(drop, user: "u\(round)-\(index)", key: "k\(round)-\(index)")
            guard let held = outcome.held, let claim = outcome.claim, let token = outcome.holdToken else {
                throw ConformanceFailure(description: "claim \(round)-\(index) on a free unit was not held: \(outcome)")
            }
            try expect(held.fence > last, "fence \(held.fence) after \(last) does not increase")
            last = held.fence
            _ = try await h.store.release(claim: claim, holdToken: token)
        }
    }
}

func verifyPerUserLimit(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("limit", units: 100, perUserLimit: 2)
    let outcomes = try await fire(h, drop: drop, count: 50) { _ in "greedy" }
    let held = outcomes.filter { $0.held != nil }.count
    let refused = outcomes.filter { $0.rejection == .limitReached }.count
    try expect(held == 2, "one shopper with limit 2 firing 50 claims got \(held) holds")
    try expect(refused == 48, "\(refused) of the other 48 claims were refused for the limit")
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(snapshot.held == 2, "inspect shows \(snapshot.held) held units after the limited burst")
}

func verifyExpiry(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("expiry", units: 1, holdTTL: .seconds(1))
    let first = try await h.claim(drop, user: "slow", key: "a")
    guard let held = first.held, let claim = first.claim, let token = first.holdToken else {
        throw ConformanceFailure(description: "the first claim on a free unit was not held: \(first)")
    }
    try await h.time.advance(by: .milliseconds(1300))
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(
        snapshot.free == 1 && snapshot.held == 0, "inspect after expiry: \(snapshot.free) free, \(snapshot.held) held")
    try await expectError(.leaseExpired, "confirm after expiry") {
        try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: held.fence))
    }
    let status = try await h.store.status(of: claim)
    try expect(status.state == .expired, "an expired lease's claim is \(status.state), not expired")
    let second = try await h.claim(drop, user: "fast", key: "b")
    guard let again = second.held else {
        throw ConformanceFailure(description: "the unit of an expired lease was not claimable again: \(second)")
    }
    try expect(again.unit == held.unit && again.fence > held.fence, "the new lease did not get a higher fence")

    let reapDrop = try await h.makeDrop("reap", units: 2, holdTTL: .seconds(1))
    _ = try await h.claim(reapDrop, user: "x", key: "x")
    _ = try await h.claim(reapDrop, user: "y", key: "y")
    try await h.time.advance(by: .milliseconds(1300))
    let report = try await h.store.reapExpired(drop: reapDrop)
    try expect(report.expired == 2, "the reaper ended \(report.expired) of 2 expired leases")
    let after = try await h.store.inspect(drop: reapDrop)
    try expect(after.free == 2 && after.leases.isEmpty, "after the reap \(after.free) of 2 units are free")
}

func verifyExpiryPromotes(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("promote", units: 1, holdTTL: .seconds(1), waitlistCapacity: 5)
    let first = try await h.claim(drop, user: "first", key: "a")
    let second = try await h.claim(drop, user: "second", key: "b")
    let third = try await h.claim(drop, user: "third", key: "c")
    try expect(second.waitlistPosition == 1 && third.waitlistPosition == 2, "waitlist positions: \(second), \(third)")
    try await h.time.advance(by: .milliseconds(1300))
    let promoted = try await h.store.status(of: second.claim!)
    try expect(promoted.state == .held, "the oldest waitlisted claim is \(promoted.state) after the lease expired")
    try expect(promoted.fence! > first.held!.fence, "the promoted lease did not get a higher fence")
    let waiting = try await h.store.status(of: third.claim!)
    try expect(waiting.state == .waitlisted, "the younger waitlisted claim is \(waiting.state), not still waitlisted")
    let sale = try await h.store.confirm(
        ConfirmRequest(claim: second.claim!, holdToken: second.holdToken!, fence: promoted.fence!))
    try expect(sale.unit == first.held!.unit, "the promoted claim bought unit \(sale.unit)")
}

func verifyRefusals(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("refusals", units: 2)
    let outcome = try await h.claim(drop, user: "u", key: "a")
    guard let held = outcome.held, let claim = outcome.claim, let token = outcome.holdToken else {
        throw ConformanceFailure(description: "claim on a free unit was not held: \(outcome)")
    }
    try await expectError(.invalidHoldToken, "confirm with a wrong token") {
        try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: .random(), fence: held.fence))
    }
    try await expectError(.invalidHoldToken, "release with a wrong token") {
        try await h.store.release(claim: claim, holdToken: .random())
    }
    try await expectError(.staleFence, "confirm with an older fence") {
        try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: Fence(held.fence.value - 1)))
    }
    try await expectError(.staleFence, "extend with another fence") {
        try await h.store.extend(claim: claim, holdToken: token, fence: Fence(held.fence.value + 1))
    }
    let status = try await h.store.status(of: claim)
    try expect(status.state == .held, "refused calls changed the claim to \(status.state)")
    let sale = try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: held.fence))
    try expect(sale.fence == held.fence && sale.unit == held.unit, "the sale does not carry the lease's unit and fence")
}

func verifyConfirmSells(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("sells", units: 1, holdTTL: .seconds(1))
    let outcome = try await h.claim(drop, user: "buyer", key: "a")
    guard let held = outcome.held, let claim = outcome.claim, let token = outcome.holdToken else {
        throw ConformanceFailure(description: "claim on a free unit was not held: \(outcome)")
    }
    // Any text, newlines and separators included, comes back as it went in.
    let orderRef = "order-1\nline 2 | \t café 🛒"
    let sale = try await h.store.confirm(
        ConfirmRequest(claim: claim, holdToken: token, fence: held.fence, orderRef: orderRef))
    try expect(sale.unit == held.unit && sale.claim == claim && sale.orderRef == orderRef, "sale: \(sale)")
    let again = try await h.store.confirm(
        ConfirmRequest(claim: claim, holdToken: token, fence: held.fence, orderRef: orderRef))
    try expect(again == sale, "confirming twice gave a different sale: \(again)")
    try await expectError(.notHeld, "release after confirm") {
        try await h.store.release(claim: claim, holdToken: token)
    }
    let late = try await h.claim(drop, user: "late", key: "b")
    try expect(late.rejection == .soldOut, "a claim on a sold-out drop got \(late.decision), not sold out")
    try await h.time.advance(by: .milliseconds(1300))
    let later = try await h.claim(drop, user: "later", key: "c")
    try expect(later.rejection == .soldOut, "after the TTL a sold unit was handed out again: \(later.decision)")
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(snapshot.sold == 1 && snapshot.held == 0 && snapshot.free == 0, "inspect: \(snapshot)")
    let counts = try await h.store.counts(drop: drop)
    try expect(counts.sold == 1 && counts.held == 0 && counts.free == 0 && counts.leases.isEmpty, "counts: \(counts)")
    try await expectError(.unknownDrop, "counts of a drop that does not exist") {
        _ = try await h.store.counts(drop: DropID("no-such-drop-\(UInt32.random(in: 0...UInt32.max))"))
    }
    let status = try await h.store.status(of: claim)
    try expect(status.state == .confirmed, "a sold claim is \(status.state)")
}

/// `everyUnitSold` is false while a unit is free or held, true once each is sold; the counts
/// say the same at each step.
func verifyEveryUnitSold(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("all-sold", units: 3)
    func expectCounts(free: Int, held: Int, sold: Int) async throws {
        let counts = try await h.store.counts(drop: drop)
        try expect(
            counts.units == 3 && counts.free == free && counts.held == held && counts.sold == sold,
            "counts: \(counts), expected \(free) free, \(held) held, \(sold) sold")
        let everySold = try await h.store.everyUnitSold(drop: drop)
        try expect(
            everySold == (sold == 3), "\(free) free, \(held) held, \(sold) sold: every unit sold is \(everySold)")
    }
    try await expectCounts(free: 3, held: 0, sold: 0)
    for (index, user) in ["first", "second", "third"].enumerated() {
        let outcome = try await h.claim(drop, user: user, key: user)
        guard let held = outcome.held, let claim = outcome.claim, let token = outcome.holdToken else {
            throw ConformanceFailure(description: "claim on a free unit was not held: \(outcome)")
        }
        try await expectCounts(free: 2 - index, held: 1, sold: index)
        _ = try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: held.fence))
        try await expectCounts(free: 2 - index, held: 0, sold: index + 1)
    }
    try await expectError(.unknownDrop, "everyUnitSold of a drop that does not exist") {
        _ = try await h.store.everyUnitSold(drop: DropID("no-such-drop-\(UInt32.random(in: 0...UInt32.max))"))
    }
}

func verifyRelease(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("release", units: 1)
    let first = try await h.claim(drop, user: "first", key: "a")
    let second = try await h.claim(drop, user: "second", key: "b")
    guard let held = first.held, let claim = first.claim, let token = first.holdToken,
        second.waitlistPosition == 1, let waiting = second.claim, let waitingToken = second.holdToken
    else {
        throw ConformanceFailure(
            description: "expected held then waitlisted, got \(first.decision), \(second.decision)")
    }
    let released = try await h.store.release(claim: claim, holdToken: token)
    try expect(released.state == .released, "released claim is \(released.state)")
    let twice = try await h.store.release(claim: claim, holdToken: token)
    try expect(twice.state == .released, "releasing twice gave \(twice.state)")
    let promoted = try await h.store.status(of: waiting)
    try expect(
        promoted.state == .held && promoted.unit == held.unit, "release did not promote the waitlist: \(promoted)")
    try expect(promoted.fence! > held.fence, "the promoted lease did not get a higher fence")
    // A replay answers as the claim was first answered: a place in line, not the unit it holds now.
    let replayed = try await h.claim(drop, user: "second", key: "b")
    try expect(
        replayed.replayed && replayed.waitlistPosition == 1 && replayed.held == nil,
        "the promoted claim's replay was \(replayed.decision)")
    try await expectError(.staleFence, "confirm of the promoted claim under the released fence") {
        try await h.store.confirm(ConfirmRequest(claim: waiting, holdToken: waitingToken, fence: held.fence))
    }
    // Released without anyone waiting: the unit is free again.
    let back = try await h.store.release(claim: waiting, holdToken: waitingToken)
    try expect(back.state == .released, "second release gave \(back.state)")
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(snapshot.free == 1 && snapshot.held == 0, "after release: \(snapshot.free) free, \(snapshot.held) held")

    // A shopper answered "sold out" while every unit was held and the line full holds nothing
    // against their limit: once a unit comes back, a new claim of theirs gets it.
    let full = try await h.makeDrop("release-full", units: 1, waitlistCapacity: 0)
    let holder = try await h.claim(full, user: "holder", key: "a")
    let turnedAway = try await h.claim(full, user: "late", key: "b")
    guard let holderClaim = holder.claim, let holderToken = holder.holdToken, turnedAway.rejection == .soldOut else {
        throw ConformanceFailure(
            description: "expected held then sold out, got \(holder.decision), \(turnedAway.decision)")
    }
    _ = try await h.store.release(claim: holderClaim, holdToken: holderToken)
    let again = try await h.claim(full, user: "late", key: "c")
    try expect(again.held != nil, "a shopper once answered sold out got \(again.decision) for a unit given back")
    let third = try await h.claim(drop, user: "third", key: "c")
    try expect(third.held?.unit == held.unit, "the released unit was not claimable: \(third.decision)")
    // Leaving the waitlist: the lapsed claim is not promoted later.
    let fourth = try await h.claim(drop, user: "fourth", key: "d")
    let lapsed = try await h.store.release(claim: fourth.claim!, holdToken: fourth.holdToken!)
    try expect(lapsed.state == .lapsed, "a waitlisted claim released is \(lapsed.state), not lapsed")
    _ = try await h.store.release(claim: third.claim!, holdToken: third.holdToken!)
    let after = try await h.store.inspect(drop: drop)
    try expect(after.free == 1 && after.waitlisted == 0, "a lapsed claim was promoted: \(after)")
}

func verifyExtend(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("extend", units: 1, holdTTL: .seconds(2))
    let outcome = try await h.claim(drop, user: "u", key: "a")
    guard let held = outcome.held, let claim = outcome.claim, let token = outcome.holdToken else {
        throw ConformanceFailure(description: "claim on a free unit was not held: \(outcome)")
    }
    try await h.time.advance(by: .milliseconds(1200))
    let lease = try await h.store.extend(claim: claim, holdToken: token, fence: held.fence)
    try expect(lease.expiresAt > held.expiresAt && lease.fence == held.fence, "extend: \(lease) after \(held)")
    try await h.time.advance(by: .milliseconds(1200))
    let sale = try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: held.fence))
    try expect(sale.unit == held.unit, "confirm after extend sold unit \(sale.unit)")
    try await expectError(.notHeld, "extend after confirm") {
        try await h.store.extend(claim: claim, holdToken: token, fence: held.fence)
    }
}

func verifyIdempotency(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("idem", units: 10)
    let first = try await h.claim(drop, user: "u", key: "same")
    let again = try await h.claim(drop, user: "u", key: "same")
    try expect(first.held != nil && !first.replayed, "first claim: \(first)")
    try expect(again.claim == first.claim && again.decision == first.decision, "replay differs: \(again) vs \(first)")
    try expect(again.replayed, "a replay must be marked")
    if h.store.keepsHoldTokens {
        try expect(again.holdToken == first.holdToken, "a store that keeps tokens replayed \(again.holdToken as Any)")
    } else {
        try expect(again.holdToken == nil, "a store that keeps no tokens showed one on a replay")
    }
    try await expectError(.idempotencyKeyReused, "same key, other shopper") {
        try await h.claim(drop, user: "v", key: "same")
    }
    let burst = try await withThrowingTaskGroup(of: ClaimOutcome.self) { group in
        for _ in 0..<20 { group.addTask { try await h.claim(drop, user: "w", key: "burst") } }
        var outcomes: [ClaimOutcome] = []
        for try await outcome in group { outcomes.append(outcome) }
        return outcomes
    }
    try expect(
        Set(burst.map(\.claim)).count == 1,
        "20 concurrent claims with one key made \(Set(burst.map(\.claim)).count) claims")
    let tokens = burst.compactMap(\.holdToken)
    if h.store.keepsHoldTokens {
        try expect(
            tokens.count == 20 && Set(tokens).count == 1, "20 answers to one key carried \(Set(tokens).count) tokens")
    } else {
        try expect(tokens.count == 1, "the token was shown more than once")
    }
    // The kept token is the claim's: it confirms the lease.
    if h.store.keepsHoldTokens, let claim = again.claim, let token = again.holdToken, let lease = again.held {
        let sale = try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: lease.fence))
        try expect(sale.claim == claim, "the replayed token confirmed \(sale)")
    }
    let snapshot = try await h.store.inspect(drop: drop)
    let leases = snapshot.held + snapshot.sold
    try expect(leases == 2, "two keys gave \(leases) leases")
}

func verifyDraw(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("draw", units: 2, mode: .draw)
    var positions: [Int] = []
    for index in 0..<5 {
        let outcome = try await h.claim(drop, user: "u\(index)", key: "k\(index)")
        guard case .entered(let position) = outcome.decision, outcome.holdToken != nil else {
            throw ConformanceFailure(description: "a draw claim was answered \(outcome.decision), not entered")
        }
        positions.append(position)
    }
    try expect(positions == [1, 2, 3, 4, 5], "entry numbers \(positions)")
    let twice = try await h.claim(drop, user: "u0", key: "other")
    try expect(twice.rejection == .limitReached, "a second entry over the limit got \(twice.decision)")
    let snapshot = try await h.store.inspect(drop: drop)
    try expect(snapshot.free == 2 && snapshot.held == 0, "entries must not take units before the draw: \(snapshot)")
}

func verifyBadInput(_ h: ConformanceHarness) async throws {
    for text in ["", String(repeating: "a", count: 65), "Upper", "sp ace", "ünï"] {
        try await expectError(.invalidInput, "drop id \"\(text)\"") { try DropID(text) }
    }
    try await expectError(.invalidInput, "empty user") { try UserID("") }
    try await expectError(.invalidInput, "long user") { try UserID(String(repeating: "u", count: 129)) }
    try await expectError(.invalidInput, "empty key") { try IdempotencyKey("") }
    try await expectError(.invalidInput, "long key") { try IdempotencyKey(String(repeating: "k", count: 256)) }
    try await expectError(.invalidInput, "zero units") {
        try DropConfig(id: DropID("zero"), units: 0, opensAt: h.time.now())
    }
    try await expectError(.invalidInput, "too many units") {
        try DropConfig(id: DropID("huge"), units: 1_000_001, opensAt: h.time.now())
    }
    try await expectError(.invalidInput, "a TTL under a second") {
        try DropConfig(id: DropID("ttl"), units: 1, holdTTL: .milliseconds(500), opensAt: h.time.now())
    }
    try await expectError(.invalidInput, "a limit of 0") {
        try DropConfig(id: DropID("limit"), units: 1, perUserLimit: 0, opensAt: h.time.now())
    }

    let unknown = try DropID("no-such-drop-\(h.runTag)")
    try await expectError(.unknownDrop, "claim on an unknown drop") { try await h.claim(unknown, user: "u", key: "k") }
    try await expectError(.unknownDrop, "inspect an unknown drop") { try await h.store.inspect(drop: unknown) }

    let open = try await h.makeDrop("open", units: 1)
    try await expectError(.dropExists, "creating a drop twice") {
        try await h.store.createDrop(DropConfig(id: open, units: 1, opensAt: h.time.now()))
    }
    try await expectError(.unknownClaim, "status of an unknown claim") {
        try await h.store.status(of: ClaimID(drop: open, number: 999_999))
    }
    let closed = try await h.makeDrop("closed", units: 1, opensIn: .seconds(-120), closesIn: .seconds(-60))
    let late = try await h.claim(closed, user: "u", key: "k")
    try expect(late.rejection == .closed, "a claim on a closed drop got \(late.decision)")
    let future = try await h.makeDrop("future", units: 1, opensIn: .seconds(3600))
    let early = try await h.claim(future, user: "u", key: "k")
    try expect(early.rejection == .notOpen, "a claim before the drop opens got \(early.decision)")
    let snapshot = try await h.store.inspect(drop: future)
    try expect(snapshot.free == 1, "an early claim took a unit")
}

func verifyReschedule(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("window", units: 2, holdTTL: .seconds(30), opensIn: .seconds(3600))
    let early = try await h.claim(drop, user: "early", key: "early")
    try expect(early.decision == .rejected(.notOpen), "a claim before the drop opens got \(early.decision)")

    let now = h.time.now()
    let opened = try await h.store.reschedule(drop: drop, opensAt: now.adding(.seconds(-1)), closesAt: nil)
    try expect(opened.opensAt == now.adding(.seconds(-1)) && opened.closesAt == nil, "reschedule answered \(opened)")
    try expect(opened.units == 2 && opened.holdTTL == .seconds(30), "reschedule changed the settings: \(opened)")
    let read = try await h.store.configuration(of: drop)
    try expect(read == opened, "configuration(of:) says \(read), reschedule said \(opened)")
    let held = try await h.claim(drop, user: "first", key: "first")
    try expect(held.held != nil, "a claim on an opened drop got \(held.decision)")

    _ = try await h.store.reschedule(drop: drop, opensAt: now.adding(.seconds(-1)), closesAt: h.time.now())
    try await h.time.advance(by: .milliseconds(5))
    let late = try await h.claim(drop, user: "late", key: "late")
    try expect(late.decision == .rejected(.closed), "a claim on a closed drop got \(late.decision)")
    let status = try await h.store.status(of: held.claim!)
    try expect(status.state == .held, "closing the drop changed a held claim to \(status.state)")

    try await expectError(.invalidInput, "closing before opening") {
        try await h.store.reschedule(drop: drop, opensAt: now, closesAt: now.adding(.seconds(-5)))
    }
    try await expectError(.unknownDrop, "rescheduling an unknown drop") {
        try await h.store.reschedule(drop: DropID("no-such-drop-\(h.runTag)"), opensAt: now, closesAt: nil)
    }
}

func verifyAnsweredKeys(_ h: ConformanceHarness) async throws {
    let drop = try await h.makeDrop("answered", units: 1, waitlistCapacity: 1)
    let held = try await h.claim(drop, user: "a", key: "held")
    let waiting = try await h.claim(drop, user: "b", key: "waiting")
    let limited = try await h.claim(drop, user: "a", key: "limited")
    let soldOut = try await h.claim(drop, user: "c", key: "sold-out")
    try expect(held.held != nil, "first claim got \(held.decision)")
    try expect(waiting.waitlistPosition == 1, "second claim got \(waiting.decision)")
    try expect(limited.rejection == .limitReached, "a second claim by one shopper got \(limited.decision)")
    try expect(soldOut.rejection == .soldOut, "a claim past the waitlist got \(soldOut.decision)")
    let keys = try await h.store.answeredKeys(drop: drop)
    try expect(
        keys == Set(try ["held", "waiting", "limited"].map(IdempotencyKey.init)),
        "answered keys are \(keys.map(\.rawValue).sorted())")

    // Once every unit is sold, a new key is answered "sold out" even for a shopper at the
    // limit: the keys read at any moment after that are then the whole list the service
    // needs, with no claim in flight able to add one.
    guard let unit = held.held, let claim = held.claim, let token = held.holdToken else {
        throw ConformanceFailure(description: "the held claim has no lease")
    }
    _ = try await h.store.confirm(ConfirmRequest(claim: claim, holdToken: token, fence: unit.fence, orderRef: nil))
    let atLimit = try await h.claim(drop, user: "a", key: "after-a")
    try expect(atLimit.rejection == .soldOut, "a shopper at the limit on a sold drop got \(atLimit.decision)")
    let waitingAgain = try await h.claim(drop, user: "b", key: "after-b")
    try expect(waitingAgain.rejection == .soldOut, "a waitlisted shopper on a sold drop got \(waitingAgain.decision)")
    let replayed = try await h.claim(drop, user: "a", key: "limited")
    try expect(replayed.rejection == .limitReached, "the limit answer replayed as \(replayed.decision)")
    // A key first answered "sold out" replays that answer, and is still its shopper's alone.
    let soldOutAgain = try await h.claim(drop, user: "c", key: "sold-out")
    try expect(
        soldOutAgain.replayed && soldOutAgain.claim == soldOut.claim && soldOutAgain.rejection == .soldOut,
        "the sold-out answer replayed as \(soldOutAgain)")
    try await expectError(.idempotencyKeyReused, "a sold-out key, other shopper") {
        try await h.claim(drop, user: "d", key: "sold-out")
    }
    let after = try await h.store.answeredKeys(drop: drop)
    try expect(after == keys, "answered keys after the sale are \(after.map(\.rawValue).sorted())")
}
