/// Maps the server's clock onto the client's: every answer that carries a server time was
/// stamped somewhere between its request's invoke and response on the client clock, so the
/// offset between the clocks lies in the intersection of those windows. A server time then
/// maps to a window on the client clock, widened by the server's rounding and a drift
/// allowance; a check that needs the mapping is a timing check, never a safety one.
public struct ClockMapping: Sendable, Hashable {
    /// Bounds of (server time − client time), in nanoseconds.
    public let lowestOffset: Int64
    public let highestOffset: Int64
    /// Whether the samples agreed (their windows intersect). When they do not (a clock
    /// stepped during the run), the mapping spans all of them and says so.
    public let consistent: Bool
    public let samples: Int
    /// Added on each side of a mapped time: the server's rounding and the clocks' drift.
    public let slack: Int64

    /// `samples`: (server time, invoke, response), all in nanoseconds; `resolution`: how
    /// coarse the server's times are (they are truncated to it); `drift`: the largest rate
    /// difference assumed between the clocks (500 ppm, NTP's bound), over `span`.
    public init?(
        samples: [(server: Int64, invoke: Int64, response: Int64)], resolution: Int64, drift: Double = 500e-6,
        span: Int64
    ) {
        guard !samples.isEmpty else { return nil }
        var low = Int64.min
        var high = Int64.max
        var widestLow = Int64.max
        var widestHigh = Int64.min
        for sample in samples {
            // The server's instant lies in [server, server + resolution) and in [invoke, response].
            let sampleLow = sample.server - sample.response
            let sampleHigh = sample.server + resolution - sample.invoke
            low = max(low, sampleLow)
            high = min(high, sampleHigh)
            widestLow = min(widestLow, sampleLow)
            widestHigh = max(widestHigh, sampleHigh)
        }
        consistent = low <= high
        lowestOffset = consistent ? low : widestLow
        highestOffset = consistent ? high : widestHigh
        self.samples = samples.count
        slack = resolution + Int64(drift * Double(span))
    }

    /// Where a server time falls on the client clock, at the earliest and the latest.
    public func clientWindow(ofServer time: Int64) -> (earliest: Int64, latest: Int64) {
        (time - highestOffset - slack, time - lowestOffset + slack)
    }

    /// How wide a mapped window is, in milliseconds.
    public var uncertaintyMilliseconds: Double { Double(highestOffset - lowestOffset + 2 * slack) / 1e6 }
}
