import DibsCheck
import DibsClient
import Foundation
import Synchronization

/// Runs a load plan against a `dibs serve`: creates the drop, fires the claims (closed or open
/// model), lets winners confirm, resolves the requests that got no answer, and checks the
/// history.
public enum LoadRun {
    public static func run(_ plan: LoadPlan, log: @escaping @Sendable (String) -> Void = { _ in }) async throws
        -> LoadReport
    {
        guard var command = plan.serveCommand else {
            return try await runAgainst(plan, server: nil, stores: nil, log: log)
        }
        var plan = plan
        var stores: OwnServers?
        defer { stores?.stop() }
        if plan.fault?.needsOwnStores == true {
            let own = try OwnServers(
                dibs: command[0], schema: ProcessInfo.processInfo.environment["DIBS_SCHEMA_DIR"] ?? "schema", log: log)
            stores = own
            command =
                Self.removingStoreFlags(command) + [
                    "--redis-url", own.redisURL, "--postgres-url", own.postgresURL,
                ]
            plan.operatorKey = own.operatorKey
            plan.storefrontKey = own.storefrontKey
        }
        let server = ServerUnderTest(command: command)
        plan.port = try server.start()
        defer { server.stop() }
        return try await runAgainst(plan, server: server, stores: stores, log: log)
    }

    /// The serve command without its store flags, which the run's own servers replace.
    static func removingStoreFlags(_ command: [String]) -> [String] {
        var kept: [String] = []
        var skipNext = false
        for argument in command {
            if skipNext {
                skipNext = false
                continue
            }
            if argument == "--redis-url" || argument == "--postgres-url" {
                skipNext = true
            } else if !argument.hasPrefix("--redis-url=") && !argument.hasPrefix("--postgres-url=") {
                kept.append(argument)
            }
        }
        return kept
    }

    static func runAgainst(
        _ plan: LoadPlan, server: ServerUnderTest?, stores: OwnServers?, log: @escaping @Sendable (String) -> Void
    ) async throws -> LoadReport {
        if plan.fault?.needsServer == true && server == nil {
            throw LoadError("a fault needs a server the run starts itself (--serve-command)")
        }
        let clock = RunClock()
        let runTag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let drop = try await prepareDrop(plan, runTag: runTag)
        let recorder = Recorder()
        let counts = LiveCounts()
        let confirms = ConnectionPool(host: plan.host, port: plan.port, size: 32)
        let cpuBefore = CPUUse.now()

        let progress = plan.progress ? Task { await reportProgress(plan, counts, clock, log) } : nil
        let tickets = TicketCounter()
        let faultEvents = TaskList.Lines()
        let faultLog: @Sendable (String) -> Void = { line in
            faultEvents.append(String(format: "%.2f s: ", Double(clock.now()) / 1e9) + line)
            log("fault: " + line)
        }
        @Sendable func inflict(_ fault: LoadPlan.Fault) async {
            switch fault {
            case .killServer:
                guard let server else { return }
                faultLog("kill -9 of dibs serve after \(tickets.taken) claims")
                server.kill()
                try? await Task.sleep(for: .milliseconds(500))
                do {
                    try server.start()
                    faultLog("dibs serve started again")
                } catch {
                    faultLog("dibs serve did not start again: \(error)")
                }
            case .restartRedis:
                guard let stores else { return }
                faultLog("kill -9 of Redis after \(tickets.taken) claims, started again in 1 s")
                do {
                    try await stores.restartRedis(downFor: .seconds(1))
                    faultLog("Redis started again")
                } catch {
                    faultLog("Redis did not start again: \(error)")
                }
            case .pausePostgres:
                guard let stores else { return }
                faultLog("SIGSTOP of Postgres after \(tickets.taken) claims, SIGCONT in 3 s")
                stores.pausePostgres()
                try? await Task.sleep(for: .seconds(3))
                stores.resumePostgres()
                faultLog("Postgres continued")
            case .zombieShopper:
                return
            }
        }
        let faults = Task {
            guard let fault = plan.fault, fault.needsServer else { return }
            while tickets.taken < plan.claims / 3 && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            if Task.isCancelled { return }
            // Once begun, a fault runs to its end (a server it stopped is started again) even
            // when the claims finish meanwhile: an unstructured task is not cancelled with this one.
            await Task { await inflict(fault) }.value
        }
        let confirmTasks = TaskList()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<min(plan.connections, plan.claims) {
                group.addTask {
                    var random = SeededGenerator(seed: plan.seed &+ UInt64(worker) &* 0x9E37_79B9_7F4A_7C15)
                    var connection = try await HTTP1Connection.connect(host: plan.host, port: plan.port)
                    defer { connection.close() }
                    while true {
                        let index = tickets.take()
                        if index >= plan.claims { return }
                        let intended: Int64
                        if let rate = plan.rate {
                            intended = Int64(Double(index) / rate * 1e9)
                            let wait = intended - clock.now()
                            if wait > 0 { try await Task.sleep(for: .nanoseconds(wait)) }
                        } else {
                            intended = clock.now()
                        }
                        let shopper = "s\(index % max(1, plan.shoppers))-\(runTag)"
                        let key = "\(runTag)-c\(index)"
                        let first = await claim(
                            &connection, plan, drop, shopper, key, .claim, intended, clock, recorder, counts)
                        guard plan.scenario == .checkout else { continue }
                        if random.chance(plan.retryShare) {
                            _ = await claim(
                                &connection, plan, drop, shopper, key, .retry, clock.now(), clock, recorder, counts)
                        }
                        if random.chance(plan.greedyShare) {
                            _ = await claim(
                                &connection, plan, drop, shopper, "\(key)-again", .claim, clock.now(), clock,
                                recorder, counts)
                        }
                        if let first, first.status == 201, let token = first.token, let claimID = first.claim {
                            let choice = random.unit()
                            if choice < plan.abandonShare { continue }  // the hold expires
                            var delay = Duration.nanoseconds(
                                Int64(
                                    random.unit()
                                        * Double(
                                            plan.confirmDelay.components.seconds * 1_000_000_000
                                                + plan.confirmDelay.components.attoseconds / 1_000_000_000)))
                            var step: LeaseStep = choice < plan.abandonShare + plan.releaseShare ? .release : .confirm
                            if step == .confirm && plan.fault == .zombieShopper && random.chance(0.05) {
                                step = .zombieConfirm
                                delay = .seconds(plan.holdTTLSeconds) + .milliseconds(500)
                            }
                            let task = Task {
                                try? await Task.sleep(for: delay)
                                await settle(step, plan, claimID, token, shopper, confirms, clock, recorder, counts)
                            }
                            confirmTasks.append(task)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let claimsEnded = clock.now()
        faults.cancel()
        await faults.value
        for task in confirmTasks.all { await task.value }
        progress?.cancel()
        await confirms.close()

        // Requests that got no answer may or may not have taken effect: ask again with the
        // same key, whose replay says which.
        var operations = recorder.all
        let askedAgain = try await resolveUnknowns(&operations, plan, drop, clock)
        try await resolveLeaseSteps(&operations, plan, clock)
        try await recordPromotions(&operations, plan, clock)
        let cpu = CPUUse.now().since(cpuBefore)
        return LoadReport.make(
            plan: plan, drop: drop, operations: operations, askedAgain: askedAgain,
            claimsSeconds: Double(claimsEnded) / 1e9,
            totalSeconds: Double(clock.now()) / 1e9, cpu: cpu, faultEvents: faultEvents.all)
    }

    /// What a claim answered, as far as the next steps need it.
    struct ClaimAnswer {
        let status: Int
        let claim: String?
        let token: String?
    }

    static func claim(
        _ connection: inout HTTP1Connection, _ plan: LoadPlan, _ drop: DropInfo, _ shopper: String, _ key: String,
        _ kind: RecordedOperation.Kind, _ intended: Int64, _ clock: RunClock, _ recorder: Recorder,
        _ counts: LiveCounts
    ) async -> ClaimAnswer? {
        let invoke = clock.now()
        counts.sent()
        var operation = RecordedOperation(
            kind: kind, shopper: shopper, key: key, intended: intended, invoke: invoke, outcome: "no-answer", body: [])
        defer { recorder.append(operation) }
        // A connection that broke, or that the server closed while it sat idle
        // (`--idle-timeout`), is replaced before it is used: a claim sent on it would go
        // unanswered for nothing.
        if !connection.isActive { connection = await reconnect(plan) ?? connection }
        do {
            let reply = try await connection.send(
                "POST", "/v1/drops/\(drop.id)/claims",
                headers: [
                    ("Authorization", "Bearer \(plan.storefrontKey)"), ("Idempotency-Key", key),
                    ("Content-Type", "application/json"),
                ], body: Array(#"{"user":"\#(shopper)"}"#.utf8), timeout: plan.requestTimeout)
            let now = clock.now()
            let fields = ResponseFields(reply.body)
            operation.response = now
            operation.status = reply.status
            operation.claim = fields.string("claim")
            operation.unit = fields.integer("unit").map(Int.init)
            operation.fence = fields.integer("fence")
            operation.expiresAt = fields.milliseconds("expires_at")
            operation.outcome = fields.outcome(status: reply.status)
            operation.body = reply.body
            counts.answered(operation.outcome, latency: now - intended)
            return ClaimAnswer(status: reply.status, claim: operation.claim, token: fields.string("hold_token"))
        } catch {
            counts.answered("no-answer", latency: clock.now() - intended)
            return nil
        }
    }

    /// A new connection, trying for up to 15 s (a server being restarted is briefly away).
    static func reconnect(_ plan: LoadPlan) async -> HTTP1Connection? {
        for _ in 0..<150 {
            if let fresh = try? await HTTP1Connection.connect(host: plan.host, port: plan.port) { return fresh }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    /// What a winner does with its hold.
    enum LeaseStep {
        case confirm, release
        /// A confirm sent half a second after the lease expired: it must be refused.
        case zombieConfirm

        var path: String { self == .release ? "release" : "confirm" }
    }

    /// Confirms or releases a hold, recording the answer.
    static func settle(
        _ step: LeaseStep, _ plan: LoadPlan, _ claim: String, _ token: String, _ shopper: String,
        _ pool: ConnectionPool, _ clock: RunClock, _ recorder: Recorder, _ counts: LiveCounts
    ) async {
        let invoke = clock.now()
        let key = step == .release ? "drop-\(claim)" : "pay-\(claim)"
        var operation = RecordedOperation(
            kind: step == .release ? .release : .confirm, shopper: shopper, key: key, intended: invoke,
            invoke: invoke, outcome: "no-answer", body: [], zombie: step == .zombieConfirm)
        operation.claim = claim
        defer { recorder.append(operation) }
        let body =
            step != .release
            ? #"{"hold_token":"\#(token)","order_ref":"load-\#(claim)"}"# : #"{"hold_token":"\#(token)"}"#
        // No answer (a reset, a restarting server), a 5xx or "in flight": ask again with the
        // same key, whose replay says what happened; the operation spans all the attempts.
        var attempt = 0
        while attempt < 8 {
            attempt += 1
            guard
                let reply = try? await pool.send(
                    "POST", "/v1/claims/\(claim)/\(step.path)",
                    headers: [
                        ("Authorization", "Bearer \(plan.storefrontKey)"), ("Idempotency-Key", key),
                        ("Content-Type", "application/json"),
                    ], body: Array(body.utf8), timeout: plan.requestTimeout),
                reply.status < 500,
                ResponseFields(reply.body).string("type") != "urn:dibs:problem:idempotency-in-flight"
            else {
                try? await Task.sleep(for: .milliseconds(250 * attempt))
                continue
            }
            let now = clock.now()
            let fields = ResponseFields(reply.body)
            operation.response = now
            operation.status = reply.status
            operation.unit = fields.integer("unit").map(Int.init)
            operation.fence = fields.integer("fence")
            operation.outcome =
                reply.status == 200 ? fields.string("state") ?? "ok" : fields.outcome(status: reply.status)
            operation.body = reply.body
            counts.answered(operation.outcome, latency: now - invoke)
            return
        }
        counts.answered("no-answer", latency: clock.now() - invoke)
    }

    /// Asks again, with the same key, about every claim that got no answer (or a 5xx that
    /// may hide one); the replay's answer stands for it, at the time it came.
    static func resolveUnknowns(
        _ operations: inout [RecordedOperation], _ plan: LoadPlan, _ drop: DropInfo, _ clock: RunClock
    ) async throws -> Int {
        let unknown = operations.indices.filter { operations[$0].kind == .claim && operations[$0].isUnknown }
        guard !unknown.isEmpty else { return 0 }
        guard var connection = await reconnect(plan) else {
            throw LoadError("the server is gone: unknowns stay unknown")
        }
        defer { connection.close() }
        let recorder = Recorder()
        let counts = LiveCounts()
        // In rounds: a key still marked in flight (its request died with the store) is asked
        // again next round; the mark ends by itself within the service's 30 s.
        var pending = unknown
        for round in 0..<40 where !pending.isEmpty {
            if round > 0 { try await Task.sleep(for: .seconds(1)) }
            var later: [Int] = []
            for index in pending {
                let original = operations[index]
                guard
                    let answer = await claim(
                        &connection, plan, drop, original.shopper, original.key, .retry, clock.now(), clock,
                        recorder, counts)
                else {
                    later.append(index)
                    continue
                }
                let replay = recorder.all.last!
                if answer.status >= 500 || replay.outcome == "idempotency-in-flight" {
                    later.append(index)
                    continue
                }
                var resolved = original
                resolved.response = replay.response
                resolved.status = replay.status
                resolved.claim = replay.claim
                resolved.unit = replay.unit
                resolved.fence = replay.fence
                resolved.expiresAt = replay.expiresAt
                resolved.outcome = replay.outcome
                resolved.body = replay.body
                operations[index] = resolved
            }
            pending = later
        }
        return unknown.count
    }

    /// Confirms and releases that got no answer: the claim's state (from the status
    /// endpoint) says whether they took effect; the operation then spans its send to that
    /// answer. One that did not take effect is marked so and proves nothing.
    static func resolveLeaseSteps(_ operations: inout [RecordedOperation], _ plan: LoadPlan, _ clock: RunClock)
        async throws
    {
        let unknown = operations.indices.filter {
            operations[$0].kind != .claim && operations[$0].kind != .retry && operations[$0].response == nil
                && operations[$0].claim != nil
        }
        guard !unknown.isEmpty else { return }
        guard var connection = await reconnect(plan) else {
            throw LoadError("the server is gone: unknowns stay unknown")
        }
        defer { connection.close() }
        for index in unknown {
            guard let fields = await claimStatus(operations[index].claim!, &connection, plan) else { continue }
            let state = fields.string("state") ?? "?"
            let tookEffect =
                operations[index].kind == .confirm && state == "confirmed"
                || operations[index].kind == .release
                    && state == "released"
            operations[index].response = clock.now()
            operations[index].status = tookEffect ? 200 : 0
            operations[index].unit = fields.integer("unit").map(Int.init)
            operations[index].fence = fields.integer("fence")
            operations[index].outcome = tookEffect ? state : "no-effect (\(state))"
        }
    }

    /// A claim's status (`GET /v1/claims/{id}`); `nil` when it did not answer 200 (a broken
    /// connection is replaced before it is used).
    static func claimStatus(_ claim: String, _ connection: inout HTTP1Connection, _ plan: LoadPlan) async
        -> ResponseFields?
    {
        if !connection.isActive { connection = await reconnect(plan) ?? connection }
        guard
            let reply = try? await connection.send(
                "GET", "/v1/claims/\(claim)", headers: [("Authorization", "Bearer \(plan.storefrontKey)")],
                timeout: plan.requestTimeout), reply.status == 200
        else { return nil }
        return ResponseFields(reply.body)
    }

    /// Waitlisted claims that were promoted onto a unit (by a release or an expiry) hold a
    /// lease the answers never showed: the claim's status tells its unit, fence and expiry.
    /// The promotion happened somewhere between the claim's send and that status answer.
    static func recordPromotions(_ operations: inout [RecordedOperation], _ plan: LoadPlan, _ clock: RunClock)
        async throws
    {
        let waitlisted = operations.filter { $0.kind == .claim && $0.status == 202 && $0.outcome == "waitlisted" }
        guard !waitlisted.isEmpty, var connection = await reconnect(plan) else { return }
        defer { connection.close() }
        for claim in waitlisted {
            guard let id = claim.claim, let fields = await claimStatus(id, &connection, plan) else { continue }
            guard let unit = fields.integer("unit"), let fence = fields.integer("fence") else { continue }
            var promotion = RecordedOperation(
                kind: .promotion, shopper: claim.shopper, key: claim.key, intended: claim.invoke, invoke: claim.invoke,
                outcome: "promoted, now \(fields.string("state") ?? "?")", body: fields.bytes)
            promotion.response = clock.now()
            promotion.status = 200
            promotion.claim = id
            promotion.unit = Int(unit)
            promotion.fence = fence
            promotion.expiresAt = fields.milliseconds("expires_at")
            operations.append(promotion)
        }
    }

    /// The drop the run claims on: made fresh (through the operator API) unless named.
    static func prepareDrop(_ plan: LoadPlan, runTag: String) async throws -> DropInfo {
        let connection = try await HTTP1Connection.connect(host: plan.host, port: plan.port)
        defer { connection.close() }
        let id = plan.drop ?? "load-\(runTag)"
        if plan.drop == nil {
            var body = #"{"id":"\#(id)","units":\#(plan.units),"hold_ttl_seconds":\#(plan.holdTTLSeconds),"#
            body += #""per_user_limit":\#(plan.perUserLimit),"waitlist_capacity":\#(plan.waitlistCapacity)"#
            if let backend = plan.backend { body += #","backend":"\#(backend)""# }
            body += "}"
            let created = try await connection.send(
                "POST", "/v1/admin/drops",
                headers: [
                    ("Authorization", "Bearer \(plan.operatorKey)"), ("Idempotency-Key", "create-\(id)"),
                    ("Content-Type", "application/json"),
                ], body: Array(body.utf8), timeout: .seconds(60))
            guard created.status == 201 else {
                throw LoadError(
                    "creating drop \(id) answered \(created.status): \(String(decoding: created.body, as: UTF8.self))")
            }
        }
        let described = try await connection.send(
            "GET", "/v1/drops/\(id)", headers: [("Authorization", "Bearer \(plan.storefrontKey)")],
            timeout: .seconds(10))
        let fields = ResponseFields(described.body)
        guard described.status == 200, let units = fields.integer("units"), let limit = fields.integer("per_user_limit")
        else {
            throw LoadError(
                "reading drop \(id) answered \(described.status): \(String(decoding: described.body, as: UTF8.self))")
        }
        return DropInfo(
            id: id, units: Int(units), perUserLimit: Int(limit),
            waitlistCapacity: Int(fields.integer("waitlist_capacity") ?? 0), backend: fields.string("backend") ?? "?",
            soldBefore: Int(fields.integer("sold") ?? 0), heldBefore: Int(fields.integer("held") ?? 0))
    }

    static func reportProgress(
        _ plan: LoadPlan, _ counts: LiveCounts, _ clock: RunClock, _ log: @Sendable (String) -> Void
    ) async {
        var last = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if Task.isCancelled { return }
            let snapshot = counts.snapshot
            let outcomes = snapshot.byOutcome.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
            log(
                String(
                    format: "%6.1f s  sent %d  answered %d  %d/s  p99 %.1f ms  %@", Double(clock.now()) / 1e9,
                    snapshot.sent, snapshot.answered, snapshot.answered - last,
                    snapshot.latencies.milliseconds(atPercentile: 99), outcomes.joined(separator: ", ")))
            last = snapshot.answered
        }
    }
}
