/// The demo's table: one row a store.
public enum StampedeTable {
    public static let header = pad(["store", "holds", "waitlisted", "sold out", "other", "elapsed", "claims/s"])

    public static func row(_ report: Stampede.Report) -> String {
        pad([
            report.backend, "\(report.held)", "\(report.waitlisted)", "\(report.soldOut)", "\(report.other)",
            formatted(report.seconds, digits: 3) + " s", formatted(report.claimsPerSecond, digits: 0),
        ])
    }

    private static func pad(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            let width = index == 0 ? 10 : 11
            let padding = String(repeating: " ", count: max(0, width - cell.count))
            return index == 0 ? cell + padding : padding + cell
        }.joined(separator: " ")
    }

    private static func formatted(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        return digits == 0 ? String(Int(rounded)) : String(rounded)
    }
}
