public import DibsCore

/// A failed expectation of the conformance suite.
public struct ConformanceFailure: Error, CustomStringConvertible {
    /// What the store did wrong.
    public let description: String
}

/// How the suite moves time for a store: by hand (memory) or by sleeping (servers that keep
/// their own clock).
public enum TimeControl: Sendable {
    case manual(ManualClock)
    case real

    /// The store's notion of now, as far as the suite can tell.
    public func now() -> Timestamp {
        switch self {
        case .manual(let clock): clock.now()
        case .real: SystemClock().now()
        }
    }

    /// Lets `duration` pass for the store.
    public func advance(by duration: Duration) async throws {
        switch self {
        case .manual(let clock): clock.advance(by: duration)
        case .real: try await Task.sleep(for: duration)
        }
    }
}

/// What one store needs to run the suite: the store and how to move its time.
public struct ConformanceHarness: Sendable {
    public let store: any LeaseStore
    public let time: TimeControl
    /// Makes drop ids unique across runs against a server that keeps old drops.
    public let runTag: String
    /// Whether claims go through `startClaim` (as the HTTP server's event loop sends them)
    /// rather than `claim`.
    public let startsClaims: Bool

    /// Makes a harness for `store`.
    public init(store: any LeaseStore, time: TimeControl, startsClaims: Bool = false) {
        self.store = store
        self.time = time
        self.startsClaims = startsClaims
        var generator = SystemRandomNumberGenerator()
        self.runTag = String(generator.next() as UInt32, radix: 36)
    }

    /// Creates a fresh drop for one case; it opened a minute ago unless told otherwise.
    public func makeDrop(
        _ name: String, units: Int, holdTTL: Duration = .seconds(60), perUserLimit: Int = 1,
        waitlistCapacity: Int? = nil, mode: DropMode = .firstCome, opensIn: Duration = .seconds(-60),
        closesIn: Duration? = nil
    ) async throws -> DropID {
        let id = try DropID("\(name)-\(runTag)")
        let now = time.now()
        let config = try DropConfig(
            id: id, units: units, holdTTL: holdTTL, perUserLimit: perUserLimit, waitlistCapacity: waitlistCapacity,
            mode: mode, opensAt: now.adding(opensIn), closesAt: closesIn.map { now.adding($0) })
        try await store.createDrop(config)
        return id
    }

    /// Claims for `user` with `key` (defaults to a key unique to the user and a counter).
    public func claim(_ drop: DropID, user: String, key: String) async throws -> ClaimOutcome {
        let request = ClaimRequest(drop: drop, user: try UserID(user), idempotencyKey: try IdempotencyKey(key))
        return try await startsClaims ? store.claimStarted(request) : store.claim(request)
    }
}

extension LeaseStore {
    /// `startClaim`, awaited: a claim sent as the HTTP server's event loop sends it.
    public func claimStarted(_ request: ClaimRequest) async throws -> ClaimOutcome {
        try await withCheckedThrowingContinuation { answered in startClaim(request) { answered.resume(with: $0) } }
    }
}

/// Fails the case unless `condition` holds.
func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw ConformanceFailure(description: message()) }
}

/// Fails the case unless `body` throws a `DibsError` with `code`.
func expectError<T>(_ code: DibsError.Code, _ what: String, _ body: () async throws -> T) async throws {
    do {
        let result = try await body()
        throw ConformanceFailure(description: "\(what): expected \(code), got \(result)")
    } catch let error as DibsError {
        try expect(error.code == code, "\(what): expected \(code), got \(error)")
    }
}

extension ClaimOutcome {
    /// The unit, fence and expiry of a held answer.
    public var held: (unit: Int, fence: Fence, expiresAt: Timestamp)? {
        if case .held(let unit, let fence, let expiresAt) = decision { return (unit, fence, expiresAt) }
        return nil
    }
    var rejection: ClaimRejection? {
        if case .rejected(let reason) = decision { return reason }
        return nil
    }
    var waitlistPosition: Int? {
        if case .waitlisted(let position) = decision { return position }
        return nil
    }
}
