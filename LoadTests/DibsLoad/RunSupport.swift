import DibsCheck
import Foundation
import Synchronization

/// The drop as the run found it.
public struct DropInfo: Sendable, Codable {
    public let id: String
    public let units: Int
    public let perUserLimit: Int
    public let waitlistCapacity: Int
    public let backend: String
    /// Units sold or held when the run began: a used drop's units are not all free.
    public let soldBefore: Int
    public let heldBefore: Int
}

public struct LoadError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Nanoseconds since the run began, on the monotonic clock.
struct RunClock: Sendable {
    let start = ContinuousClock.now
    func now() -> Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }
}

/// The confirms scheduled so far, to wait for at the end.
final class TaskList: Sendable {
    private let tasks = Mutex<[Task<Void, Never>]>([])
    func append(_ task: Task<Void, Never>) { tasks.withLock { $0.append(task) } }
    var all: [Task<Void, Never>] { tasks.withLock { $0 } }

    /// Lines noted while the run goes on (what a fault did, and when).
    final class Lines: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }
}

extension SeededGenerator {
    /// A uniform value in [0, 1).
    mutating func unit() -> Double { Double.random(in: 0..<1, using: &self) }
    /// True with probability `share`.
    mutating func chance(_ share: Double) -> Bool { share > 0 && unit() < share }
}

/// User and system CPU time of this process.
struct CPUUse: Sendable {
    let seconds: Double
    let wall: ContinuousClock.Instant

    static func now() -> CPUUse {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return CPUUse(seconds: user + system, wall: .now)
    }

    /// CPU seconds used since `earlier`, and as a share of one core over that time.
    func since(_ earlier: CPUUse) -> (seconds: Double, cores: Double) {
        let wall = wall - earlier.wall
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        return (seconds - earlier.seconds, (seconds - earlier.seconds) / max(wallSeconds, 1e-9))
    }
}
