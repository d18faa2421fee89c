import Synchronization

/// Hands out 0, 1, 2, … to concurrent workers: how the stampedes share out their requests.
public final class TicketCounter: Sendable {
    private let value = Atomic<Int>(0)

    public init() {}

    /// The next ticket.
    public func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// How many tickets were taken so far.
    public var taken: Int { value.load(ordering: .relaxed) }
}
