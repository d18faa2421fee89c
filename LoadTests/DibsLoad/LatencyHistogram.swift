import Histogram

/// Latencies in microseconds in an HDR histogram (three significant digits, up to 10 min).
public struct LatencyHistogram: Sendable {
    private var histogram = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

    public init() {}

    public mutating func record(nanoseconds: Int64) {
        _ = histogram.record(UInt64(max(1, min(nanoseconds / 1000, 600_000_000))))
    }

    public var count: UInt64 { histogram.totalCount }

    /// The latency at `percentile` (0…100), in milliseconds.
    public func milliseconds(atPercentile percentile: Double) -> Double {
        count == 0 ? 0 : Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    public var maxMilliseconds: Double { count == 0 ? 0 : Double(histogram.max) / 1000 }
}
