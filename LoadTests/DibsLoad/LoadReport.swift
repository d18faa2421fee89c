public import DibsCheck
import DibsClient
import Foundation

/// What a load run found: the figures, and whether the history is linearizable and
/// single-winner.
public struct LoadReport: Sendable, Codable {
    public struct Latency: Sendable, Codable {
        public let count: UInt64
        public let p50: Double, p90: Double, p99: Double, p999: Double, max: Double
    }

    public struct Finding: Sendable, Codable {
        /// `safety` (must hold whatever the clocks do) or `idempotency`, `errors`, `timing`.
        public let kind: String
        public let invariant: String
        public let explanation: String
        public let witnesses: [String]
    }

    public let drop: DropInfo
    public let scenario: String
    /// The fault the run inflicted, if any, and what it did when.
    public let fault: String?
    public let faultEvents: [String]
    /// `closed` (N connections) or `open` (claims per second, on a schedule).
    public let model: String
    public let connections: Int
    public let targetRate: Double?
    public let claims: Int
    public let shoppers: Int
    public let claimSeconds: Double
    public let totalSeconds: Double
    public let claimRate: Double
    /// Answers by outcome (`held`, `waitlisted`, `sold-out`, …), claims and confirms apart.
    public let claimOutcomes: [String: Int]
    public let confirmOutcomes: [String: Int]
    public let releaseOutcomes: [String: Int]
    public let retries: Int
    /// Waitlisted claims later promoted onto a unit.
    public let promoted: Int
    /// Zombie-shopper fault: confirms sent after their lease expired, and how they were answered.
    public let zombieOutcomes: [String: Int]
    /// Claims that got no answer (or a 504) and were asked about again with the same key.
    public let askedAgain: Int
    public let unresolved: Int
    /// Latency from the intended send time, in milliseconds (open model: corrected for
    /// coordinated omission).
    public let claimLatency: Latency
    public let confirmLatency: Latency
    /// Open model: how late sends were against the schedule, in milliseconds.
    public let lateness: Latency?
    /// Open model: whether the generator kept the rate (p99 lateness under 100 ms and the
    /// achieved rate within 5 % of the target).
    public let keptRate: Bool
    public let generatorCPUSeconds: Double
    /// CPU time over wall time: 1.0 is one core busy.
    public let generatorCores: Double
    public let findings: [Finding]
    /// The checker's work: operations checked (claims, sales, releases, expiries) and seconds.
    public let checkedOperations: Int
    public let checkSeconds: Double
    /// How wide the window of a mapped server time is on the client clock (ms), from how
    /// many grants.
    public let clockUncertaintyMs: Double?
    public let clockSamples: Int
    /// The history as checked (written by `--history`), not part of the JSON report.
    public var checkedHistory: History?

    enum CodingKeys: String, CodingKey {
        case drop, scenario, fault, faultEvents, model, connections, targetRate, claims, shoppers, claimSeconds,
            totalSeconds
        case claimRate, claimOutcomes, confirmOutcomes, releaseOutcomes, retries, promoted, zombieOutcomes, askedAgain,
            unresolved
        case claimLatency, confirmLatency, lateness, keptRate, generatorCPUSeconds, generatorCores, findings
        case checkedOperations, checkSeconds, clockUncertaintyMs, clockSamples, leases, timeline
    }
    /// Per-unit leases for the HTML timeline: unit, claim, held at (s), confirmed at (s).
    public let leases: [LeaseSpan]

    public struct LeaseSpan: Sendable, Codable {
        public let unit: Int
        public let claim: String
        public let heldAt: Double
        public let confirmedAt: Double?
        /// When a release answered (the hold ended), if it was released.
        public let releasedAt: Double?
    }

    /// Latency over time for the HTML plot: second, answers, p50 and p99 (ms).
    public let timeline: [TimelinePoint]

    public struct TimelinePoint: Sendable, Codable {
        public let second: Int
        public let answers: Int
        public let p50: Double
        public let p99: Double
    }

    /// Safety and idempotency findings hold whatever the clocks do; timing findings rest on
    /// the clock mapping. Both fail the run.
    public var safetyViolations: [Finding] {
        findings.filter {
            $0.kind == "safety" || $0.kind == "idempotency" || $0.kind == "timing" && $0.invariant != "kept-the-rate"
        }
    }
    public var passed: Bool { safetyViolations.isEmpty && unresolved == 0 && (model == "closed" || keptRate) }

    static func make(
        plan: LoadPlan, drop: DropInfo, operations: [RecordedOperation], askedAgain: Int, claimsSeconds: Double,
        totalSeconds: Double, cpu: (seconds: Double, cores: Double), faultEvents: [String] = []
    ) -> LoadReport {
        let claims = operations.filter { $0.kind == .claim }
        let confirms = operations.filter { $0.kind == .confirm }
        let releases = operations.filter { $0.kind == .release }
        let retries = operations.filter { $0.kind == .retry }
        var findings: [Finding] = []

        // The checker's history: each claim once (a retry replays it), each sale, each
        // release, and each lease's expiry mapped onto the client clock.
        // With a waitlist, a waitlisted claim counts toward its shopper's limit, which the
        // checker's model (held units only) cannot see: limit answers are not checked then.
        let checksLimit = drop.waitlistCapacity == 0
        if !checksLimit {
            findings.append(
                Finding(
                    kind: "note", invariant: "limit-not-checked",
                    explanation: "the drop has a waitlist of \(drop.waitlistCapacity): limit answers are not checked",
                    witnesses: []))
        }
        let promotions = operations.filter { $0.kind == .promotion }
        let built = Self.history(
            claims: claims, promotions: promotions, steps: confirms + releases, drop: drop,
            holdTTL: Int64(plan.holdTTLSeconds) * 1_000_000_000,
            checksLimit: checksLimit, span: Int64(totalSeconds * 1e9))
        if let mapping = built.mapping, !mapping.consistent {
            findings.append(
                Finding(
                    kind: "note", invariant: "clock-mapping",
                    explanation:
                        "the server's times did not agree on one offset to the client clock (a clock stepped?): expiries mapped with the widest window",
                    witnesses: []))
        }
        // A used drop's units were taken before the run: only the rest are the run's to give.
        let units = max(0, drop.units - drop.soldBefore - drop.heldBefore)
        let checkStarted = ContinuousClock.now
        let checked = History(
            units: units, perUserLimit: drop.perUserLimit, operations: built.operations,
            holdTTL: Int64(plan.holdTTLSeconds) * 1_000_000_000)
        let violations = Checker.check(checked)
        let checkTook = ContinuousClock.now - checkStarted
        for violation in violations {
            findings.append(
                Finding(
                    kind: violation.dependsOnClocks ? "timing" : "safety", invariant: violation.invariant.rawValue,
                    explanation: violation.explanation, witnesses: violation.witnesses.map { $0.description }))
        }

        // The same key must get the same answer.
        let firstByKey = Dictionary(claims.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for retry in retries {
            guard let first = firstByKey[retry.key], let status = retry.status, let firstStatus = first.status,
                status < 500, firstStatus < 500, status != 429, firstStatus != 429,
                retry.outcome != "idempotency-in-flight"
            else { continue }
            if status != firstStatus || (retry.body != first.body && !Self.sameClaim(first.body, retry.body)) {
                findings.append(
                    Finding(
                        kind: "idempotency", invariant: "same-key-same-answer",
                        explanation:
                            "Idempotency-Key \(retry.key) was answered \(firstStatus) first and \(status) on a retry",
                        witnesses: [
                            String(decoding: first.body, as: UTF8.self), String(decoding: retry.body, as: UTF8.self),
                        ]))
            }
        }

        // Zombie confirms came half a second after their lease expired: none may succeed.
        let zombies = confirms.filter(\.zombie)
        let zombieSales = zombies.filter { $0.status == 200 }
        if !zombieSales.isEmpty {
            findings.append(
                Finding(
                    kind: "timing", invariant: "an expired lease is never confirmed or released",
                    explanation:
                        "\(zombieSales.count) of \(zombies.count) confirms sent 0.5 s after their lease expired were accepted",
                    witnesses: zombieSales.prefix(5).map {
                        "confirm \($0.key): \(String(decoding: $0.body, as: UTF8.self))"
                    }))
        }

        // Server errors are not safety violations, but a release engineer must see them.
        let serverErrors = operations.filter { ($0.status ?? 0) >= 500 }
        if !serverErrors.isEmpty {
            findings.append(
                Finding(
                    kind: "errors", invariant: "no-server-errors",
                    explanation: "\(serverErrors.count) requests were answered 5xx",
                    witnesses: serverErrors.prefix(5).map { "\($0.kind) \($0.key): \($0.outcome)" }))
        }
        let unresolved = claims.filter(\.isUnknown).count

        func latency(_ values: [Int64]) -> Latency {
            var histogram = LatencyHistogram()
            for value in values { histogram.record(nanoseconds: value) }
            return Latency(
                count: histogram.count, p50: histogram.milliseconds(atPercentile: 50),
                p90: histogram.milliseconds(atPercentile: 90), p99: histogram.milliseconds(atPercentile: 99),
                p999: histogram.milliseconds(atPercentile: 99.9), max: histogram.maxMilliseconds)
        }
        let answered = claims.filter { $0.response != nil }
        let claimLatency = latency(answered.map { $0.response! - $0.intended })
        let lateness = plan.rate.map { _ in latency(claims.map { max(1000, $0.invoke - $0.intended) }) }
        let achieved = Double(claims.count) / max(claimsSeconds, 1e-9)
        let keptRate =
            plan.rate.map { rate in (lateness?.p99 ?? 0) < 100 && achieved >= rate * 0.95 } ?? true
        if !keptRate {
            findings.append(
                Finding(
                    kind: "timing", invariant: "kept-the-rate",
                    explanation: String(
                        format: "asked for %.0f claims/s, sent %.0f/s with p99 lateness %.1f ms: the run is invalid",
                        plan.rate ?? 0, achieved, lateness?.p99 ?? 0),
                    witnesses: []))
        }

        var confirmedAt: [String: Double] = [:]
        for confirm in confirms where confirm.status == 200 {
            if let claim = confirm.claim, let response = confirm.response {
                confirmedAt[claim] = Double(response) / 1e9
            }
        }
        var releasedAt: [String: Double] = [:]
        for release in releases where release.outcome == "released" {
            if let claim = release.claim, let response = release.response {
                releasedAt[claim] = Double(response) / 1e9
            }
        }
        let leases = answered.compactMap { operation -> LeaseSpan? in
            guard operation.status == 201, let unit = operation.unit, let claim = operation.claim else { return nil }
            return LeaseSpan(
                unit: unit, claim: claim, heldAt: Double(operation.response!) / 1e9, confirmedAt: confirmedAt[claim],
                releasedAt: releasedAt[claim])
        }.sorted { ($0.unit, $0.heldAt) < ($1.unit, $1.heldAt) }

        var bySecond: [Int: [Int64]] = [:]
        for operation in answered {
            bySecond[Int(operation.response! / 1_000_000_000), default: []].append(
                operation.response! - operation.intended)
        }
        let timeline = bySecond.keys.sorted().map { second -> TimelinePoint in
            let values = latency(bySecond[second]!)
            return TimelinePoint(second: second, answers: Int(values.count), p50: values.p50, p99: values.p99)
        }

        return LoadReport(
            drop: drop, scenario: plan.scenario.rawValue, fault: plan.fault?.rawValue, faultEvents: faultEvents,
            model: plan.rate == nil ? "closed" : "open",
            connections: plan.connections, targetRate: plan.rate, claims: claims.count, shoppers: plan.shoppers,
            claimSeconds: claimsSeconds, totalSeconds: totalSeconds, claimRate: achieved,
            claimOutcomes: Dictionary(claims.map { ($0.outcome, 1) }, uniquingKeysWith: +),
            confirmOutcomes: Dictionary(confirms.map { ($0.outcome, 1) }, uniquingKeysWith: +),
            releaseOutcomes: Dictionary(releases.map { ($0.outcome, 1) }, uniquingKeysWith: +), retries: retries.count,
            promoted: promotions.count,
            zombieOutcomes: Dictionary(zombies.map { ($0.outcome, 1) }, uniquingKeysWith: +),
            askedAgain: askedAgain,
            unresolved: unresolved, claimLatency: claimLatency,
            confirmLatency: latency(confirms.compactMap { op in op.response.map { $0 - op.invoke } }),
            lateness: lateness, keptRate: keptRate, generatorCPUSeconds: cpu.seconds, generatorCores: cpu.cores,
            findings: findings, checkedOperations: built.operations.count,
            checkSeconds: Double(checkTook.components.seconds) + Double(checkTook.components.attoseconds) / 1e18,
            clockUncertaintyMs: built.mapping?.uncertaintyMilliseconds, clockSamples: built.mapping?.samples ?? 0,
            checkedHistory: checked, leases: leases, timeline: timeline)
    }

    /// The checker's operations from the recorded ones, and the clock mapping used for expiries.
    static func history(
        claims: [RecordedOperation], promotions: [RecordedOperation], steps: [RecordedOperation], drop: DropInfo,
        holdTTL: Int64, checksLimit: Bool, span: Int64
    ) -> (operations: [DibsCheck.Operation], mapping: ClockMapping?) {
        var operations: [DibsCheck.Operation] = []
        func add(_ operation: RecordedOperation, _ result: DibsCheck.Operation.Result) {
            operations.append(
                DibsCheck.Operation(
                    id: operations.count, shopper: operation.shopper, invoke: operation.invoke,
                    response: operation.response, result: result))
        }
        for operation in claims.sorted(by: { $0.invoke < $1.invoke }) {
            guard let result = Self.checkerResult(operation), checksLimit || result != .limitReached else { continue }
            add(operation, result)
        }
        // A promotion is a grant the claim's answer did not show.
        for promotion in promotions {
            guard let unit = promotion.unit, let fence = promotion.fence else { continue }
            add(promotion, .held(unit: unit, fence: fence))
        }
        var unanswered = Set<String>()  // claims whose confirm or release may or may not have happened
        for operation in steps {
            guard operation.response != nil, let status = operation.status else {
                if let claim = operation.claim { unanswered.insert(claim) }
                continue
            }
            guard status == 200, let unit = operation.unit, let fence = operation.fence else { continue }
            switch (operation.kind, operation.outcome) {
            case (.confirm, _): add(operation, .confirmed(unit: unit, fence: fence))
            case (.release, "released"): add(operation, .released(unit: unit, fence: fence))
            default: continue  // "expired": the release found the lease over already
            }
        }
        // Server time of each grant: its expiry less the TTL (milliseconds, truncated).
        let grants = (claims + promotions).filter {
            ($0.status == 201 || $0.kind == .promotion) && $0.response != nil && $0.expiresAt != nil
        }
        let mapping = ClockMapping(
            samples: grants.map { ($0.expiresAt! * 1_000_000 - holdTTL, $0.invoke, $0.response!) },
            resolution: 1_000_000, span: span)
        if let mapping {
            for grant in grants {
                guard let unit = grant.unit, let fence = grant.fence, !unanswered.contains(grant.claim ?? "") else {
                    continue
                }
                let window = mapping.clientWindow(ofServer: grant.expiresAt! * 1_000_000)
                operations.append(
                    DibsCheck.Operation(
                        id: operations.count, shopper: grant.shopper, invoke: max(grant.invoke, window.earliest),
                        response: max(grant.invoke, window.latest), result: .expired(unit: unit, fence: fence)))
            }
        }
        return (operations, mapping)
    }

    /// Whether two answers to one key differ only in that one is a tokenless replay (the
    /// store's, when the kept answer is gone): same claim, unit and fence. Either may be the
    /// tokenless one: a retry sent during the run may be the first to reach the store, and
    /// the replay that resolves the original after the run then comes without the token.
    public static func sameClaim(_ first: [UInt8], _ retry: [UInt8]) -> Bool {
        let a = ResponseFields(first)
        let b = ResponseFields(retry)
        guard a.string("hold_token") == nil || b.string("hold_token") == nil, let claim = a.string("claim")
        else { return false }
        return claim == b.string("claim") && a.integer("unit") == b.integer("unit")
            && a.integer("fence") == b.integer("fence") && a.integer("fence") != nil
    }

    /// A claim as the checker models it; `nil` for answers that prove nothing was done
    /// (rate-limited, refused input, store unavailable).
    static func checkerResult(_ operation: RecordedOperation) -> DibsCheck.Operation.Result? {
        guard operation.response != nil, let status = operation.status else { return .unknown }
        switch (status, operation.outcome) {
        case (201, _):
            guard let unit = operation.unit, let fence = operation.fence else { return .unknown }
            return .held(unit: unit, fence: fence)
        case (202, "waitlisted"), (409, "sold-out"): return .soldOut
        case (403, "limit-reached"): return .limitReached
        case (503, _), (504, _): return .unknown
        default: return nil
        }
    }

    /// The summary a person reads.
    public var text: String {
        var lines: [String] = []
        lines.append(
            "drop \(drop.id) on \(drop.backend): \(drop.units) units, limit \(drop.perUserLimit) per shopper"
                + (drop.soldBefore + drop.heldBefore > 0
                    ? " (\(drop.soldBefore) sold, \(drop.heldBefore) held before)" : ""))
        lines.append(
            "\(model) model, \(scenario), \(claims) claims by \(shoppers) shoppers on \(connections) connections"
                + (targetRate.map { String(format: ", target %.0f claims/s", $0) } ?? "")
                + (fault.map { ", fault \($0)" } ?? ""))
        lines.append(
            String(
                format: "claims took %.2f s: %.0f claims/s; whole run %.2f s; generator CPU %.2f s (%.0f%% of a core)",
                claimSeconds, claimRate, totalSeconds, generatorCPUSeconds, generatorCores * 100))
        for event in faultEvents { lines.append("fault at \(event)") }
        lines.append("")
        lines.append(
            "claims    "
                + claimOutcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
        if !confirmOutcomes.isEmpty {
            lines.append(
                "confirms  "
                    + confirmOutcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  ")
            )
        }
        if !releaseOutcomes.isEmpty {
            lines.append(
                "releases  "
                    + releaseOutcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  ")
            )
        }
        if !zombieOutcomes.isEmpty {
            lines.append(
                "zombie confirms (0.5 s after expiry)  "
                    + zombieOutcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "  "))
        }
        if retries > 0 { lines.append("retries with the same key: \(retries)") }
        if promoted > 0 { lines.append("waitlisted claims promoted onto a unit: \(promoted)") }
        if askedAgain > 0 {
            lines.append(
                "claims without an answer, asked again with the same key: \(askedAgain) (\(unresolved) still unknown)")
        } else if unresolved > 0 {
            lines.append("claims with no answer: \(unresolved)")
        }
        lines.append("")
        lines.append("latency (ms)        count      p50      p90      p99    p99.9      max")
        func row(_ name: String, _ l: Latency) -> String {
            name.padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(format: " %8llu %8.2f %8.2f %8.2f %8.2f %8.2f", l.count, l.p50, l.p90, l.p99, l.p999, l.max)
        }
        lines.append(row(model == "open" ? "claim (intended)" : "claim", claimLatency))
        if confirmLatency.count > 0 { lines.append(row("confirm", confirmLatency)) }
        if let lateness { lines.append(row("send lateness", lateness)) }
        lines.append("")
        lines.append(
            String(
                format: "checked %d operations (claims, sales, releases, expiries) in %.2f s", checkedOperations,
                checkSeconds)
                + (clockUncertaintyMs.map {
                    String(
                        format: "; expiries mapped onto the client clock within %.1f ms (from %d grants)", $0,
                        clockSamples)
                } ?? ""))
        if findings.allSatisfy({ $0.kind == "note" }) {
            for finding in findings { lines.append("NOTE: \(finding.explanation)") }
            let limit = findings.isEmpty ? "the limit kept, " : ""
            lines.append(
                "CHECK PASSED: no unit leased twice at once or sold twice, no stale or expired lease accepted, "
                    + "no false sold out, \(limit)every key answered alike")
        } else {
            for finding in findings {
                lines.append("\(finding.kind.uppercased()) \(finding.invariant): \(finding.explanation)")
                for witness in finding.witnesses.prefix(6) { lines.append("    \(witness)") }
            }
            lines.append(passed ? "CHECK PASSED (with the warnings above)" : "CHECK FAILED")
        }
        return lines.joined(separator: "\n")
    }
}
