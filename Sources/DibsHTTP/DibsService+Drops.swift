import DibsCore

/// The operator's drop operations (create, open, close, cancel) and a drop's live counts.
extension DibsService {
    func createDrop(_ request: APIRequest) async -> APIResponse {
        await answering(request, scope: .operator, changesState: true) { caller, fields in
            let now = self.clock.now()
            let id = try DropID(try fields.requiredString("id", maxLength: 64))
            let units = try fields.integer("units", in: 1...Int64(DropConfig.maximumUnits))
            guard let units else { throw Problem(.invalidField, "\"units\" is required") }
            let backend = try fields.string("backend", maxLength: 16) ?? self.settings.defaultBackend
            let ttl = try fields.integer("hold_ttl_seconds", in: 1...3600) ?? 120
            let limit = try fields.integer("per_user_limit", in: 1...1000) ?? 1
            let capacity = try fields.integer("waitlist_capacity", in: 0...Int64(DropConfig.maximumUnits))
            let modeText = try fields.string("mode", maxLength: 16) ?? DropMode.firstCome.rawValue
            let opensAt = try Self.time(fields.string("opens_at", maxLength: 40), "opens_at") ?? now
            let closesAt = try Self.time(fields.string("closes_at", maxLength: 40), "closes_at")
            try fields.finish()
            guard let mode = DropMode(rawValue: modeText) else {
                throw Problem(.invalidInput, "\"mode\" is first-come or draw, not \(modeText)")
            }
            guard let store = self.router.store(backend: backend) else {
                throw Problem(
                    .invalidInput,
                    "\"backend\" must be one of \(self.router.backends.joined(separator: ", ")), not \(backend)")
            }
            let config = try DropConfig(
                id: id, units: Int(units), holdTTL: .seconds(ttl), perUserLimit: Int(limit),
                waitlistCapacity: capacity.map(Int.init), mode: mode, opensAt: opensAt, closesAt: closesAt)
            try await self.admit(caller, shopper: nil)
            return try await self.idempotently(
                self.scopedKey(caller, request.idempotencyKey!), self.fingerprint(request)
            ) {
                try await store.createDrop(config)
                try await self.router.directory.didCreate(id, backend: backend)
                self.logger.info(
                    "drop created", metadata: ["drop": "\(id)", "backend": "\(backend)", "units": "\(units)"])
                return .json(201, try await self.describe(id, store: store, cancelled: false))
            }
        }
    }

    func getDrop(_ request: APIRequest, drop dropText: String) async -> APIResponse {
        await answering(request, scope: .storefront, changesState: false) { caller, _ in
            try await self.admit(caller, shopper: nil)
            let drop = try DropID(dropText)
            let (store, cancelled) = try await self.router.route(drop)
            return .json(200, try await self.describe(drop, store: store, cancelled: cancelled, reusingCounts: true))
        }
    }

    enum DropChange: String { case open, close, cancel }

    func changeDrop(_ request: APIRequest, drop dropText: String, _ change: DropChange) async -> APIResponse {
        await answering(request, scope: .operator, changesState: true) { caller, fields in
            try fields.finish()
            try await self.admit(caller, shopper: nil)
            let drop = try DropID(dropText)
            let (store, _) = try await self.router.route(drop)
            return try await self.idempotently(
                self.scopedKey(caller, request.idempotencyKey!), self.fingerprint(request)
            ) {
                let now = self.clock.now()
                let config = try await store.configuration(of: drop)
                switch change {
                case .open:
                    let closes = config.closesAt.flatMap { $0 > now ? $0 : nil }
                    _ = try await store.reschedule(drop: drop, opensAt: min(config.opensAt, now), closesAt: closes)
                case .close, .cancel:
                    let opens = min(config.opensAt, now.adding(.milliseconds(-1)))
                    if config.closesAt.map({ $0 > now }) ?? true {
                        _ = try await store.reschedule(drop: drop, opensAt: opens, closesAt: now)
                    }
                    if change == .cancel { try await self.router.directory.cancel(drop) }
                }
                self.router.forget(drop)
                self.logger.notice("drop \(change.rawValue)", metadata: ["drop": "\(drop)", "key": "\(caller.keyID)"])
                return .json(
                    200, try await self.describe(drop, store: store, cancelled: change == .cancel ? true : nil))
            }
        }
    }

    /// The drop as `Render.drop` shows it. With `reusingCounts`, a store's costly counts may
    /// be up to `settings.costlyCountsFreshFor` old (read again by one request while the
    /// others answer with the last); the operator's changes answer with fresh ones.
    func describe(
        _ drop: DropID, store: any LeaseStore, cancelled: Bool?, reusingCounts: Bool = false
    ) async throws -> [UInt8] {
        async let config = store.configuration(of: drop)
        async let snapshot =
            reusingCounts && store.countingIsCostly
            ? costlyCounts.value(drop) { try await store.counts(drop: drop) }.value
            : store.counts(drop: drop)
        let (c, s) = try await (config, snapshot)
        metrics.record(s)
        var isCancelled = cancelled
        if isCancelled == nil { isCancelled = try await router.route(drop).cancelled }
        return Render.drop(c, s, backend: store.backendName, cancelled: isCancelled ?? false, now: clock.now())
    }
}
