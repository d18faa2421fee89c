import Foundation

/// The report as one self-contained HTML page: the summary, latency over time (p50 and p99
/// per second, as an SVG line chart), and a per-unit timeline of leases (when each unit was
/// held, and when confirmed).
extension LoadReport {
    public var html: String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        return """
            <!doctype html>
            <html><head><meta charset="utf-8"><title>dibs-load: \(escape(drop.id))</title>
            <style>
            body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
            pre { background: #f6f6f6; padding: 1em; }
            .fail { color: #b00; } .pass { color: #070; }
            svg text { font: 11px sans-serif; }
            </style></head><body>
            <h1>dibs-load: drop \(escape(drop.id)) on \(escape(drop.backend))</h1>
            <p class="\(passed ? "pass" : "fail")"><b>\(passed ? "Check passed" : "Check failed")</b></p>
            <pre>\(escape(text))</pre>
            <h2>Claim latency over time</h2>
            \(latencyChart)
            <h2>Leases per unit</h2>
            <p>Each row is a unit; a bar runs from when a claim was answered held to when it was
            confirmed (green), or to the end of the run (grey) if it was not.</p>
            \(leaseTimeline)
            </body></html>
            """
    }

    private var latencyChart: String {
        guard !timeline.isEmpty else { return "<p>No answers.</p>" }
        let width = 800.0
        let height = 240.0
        let maxSecond = Double(max(1, timeline.last!.second))
        let maxLatency = max(1, timeline.map(\.p99).max() ?? 1)
        func x(_ second: Int) -> Double { 40 + Double(second) / maxSecond * (width - 60) }
        func y(_ ms: Double) -> Double { height - 20 - ms / maxLatency * (height - 40) }
        func line(_ values: (TimelinePoint) -> Double) -> String {
            timeline.map { String(format: "%.1f,%.1f", x($0.second), y(values($0))) }.joined(separator: " ")
        }
        return """
            <svg width="\(Int(width))" height="\(Int(height))" role="img" aria-label="latency over time">
            <line x1="40" y1="\(height - 20)" x2="\(width - 20)" y2="\(height - 20)" stroke="#999"/>
            <line x1="40" y1="20" x2="40" y2="\(height - 20)" stroke="#999"/>
            <text x="44" y="16">\(String(format: "%.1f", maxLatency)) ms</text>
            <text x="\(width - 60)" y="\(height - 4)">\(Int(maxSecond)) s</text>
            <polyline fill="none" stroke="#c33" stroke-width="2" points="\(line { $0.p99 })"/>
            <polyline fill="none" stroke="#36c" stroke-width="2" points="\(line { $0.p50 })"/>
            <text x="\(width - 160)" y="30" fill="#c33">p99</text><text x="\(width - 120)" y="30" fill="#36c">p50</text>
            </svg>
            """
    }

    private var leaseTimeline: String {
        guard !leases.isEmpty else { return "<p>No leases.</p>" }
        let units = Array(Set(leases.map(\.unit))).sorted().prefix(200)
        let row = 6.0
        let width = 800.0
        let end = max(totalSeconds, 0.001)
        let index = Dictionary(uniqueKeysWithValues: units.enumerated().map { ($1, $0) })
        var bars: [String] = []
        // A bar from the grant to the sale (green), the release (blue), or else to the next
        // lease of the unit or the end of the run (grey: expired, or still held).
        for (position, lease) in leases.enumerated() {
            guard let rowIndex = index[lease.unit] else { continue }
            let next = leases.indices.contains(position + 1) && leases[position + 1].unit == lease.unit
            let over = lease.confirmedAt ?? lease.releasedAt ?? (next ? leases[position + 1].heldAt : end)
            let (color, how) =
                lease.confirmedAt != nil
                ? ("#4a4", "sold") : lease.releasedAt != nil ? ("#48c", "released") : ("#aaa", "expired or held")
            let start = 40 + lease.heldAt / end * (width - 60)
            let stop = 40 + over / end * (width - 60)
            bars.append(
                String(
                    format:
                        #"<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%@"><title>unit %d: %@ (%@)</title></rect>"#,
                    start, 10 + Double(rowIndex) * row, max(1, stop - start), row - 1, color, lease.unit, lease.claim,
                    how))
        }
        let height = 20 + Double(units.count) * row
        let note = Set(leases.map(\.unit)).count > units.count ? "<p>(the first 200 units)</p>" : ""
        return "<svg width=\"\(Int(width))\" height=\"\(Int(height))\">\(bars.joined())</svg>\(note)"
    }
}
