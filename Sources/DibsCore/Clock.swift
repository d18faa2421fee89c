import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A wall-clock instant in milliseconds since the Unix epoch: the unit Redis (`PX`) and
/// the API (`expires_at`) speak, and exact where `Double` seconds would round.
public struct Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public let milliseconds: Int64

    /// Wraps milliseconds since the epoch.
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    /// This instant moved by `duration` (rounded down to the millisecond).
    public func adding(_ duration: Duration) -> Timestamp {
        Timestamp(milliseconds: milliseconds + duration.wholeMilliseconds)
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public var description: String { "\(milliseconds)ms" }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down.
    public var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Where a store reads the time. Injected so tests can move time by hand.
public protocol DibsClock: Sendable {
    /// The current wall-clock time.
    func now() -> Timestamp
}

/// The system's real-time clock.
public struct SystemClock: DibsClock {
    /// Makes the system clock.
    public init() {}

    public func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(milliseconds: Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000)
    }
}

/// A clock that only moves when told to: for tests of expiry without sleeping.
public final class ManualClock: DibsClock {
    private let current: Mutex<Timestamp>

    /// Starts the clock at `start`.
    public init(start: Timestamp = Timestamp(milliseconds: 1_800_000_000_000)) {
        current = Mutex(start)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) {
        current.withLock { $0 = $0.adding(duration) }
    }
}
