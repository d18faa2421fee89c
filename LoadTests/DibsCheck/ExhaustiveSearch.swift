/// A Wing–Gong search for a linearization of a small history against the sequential model:
/// it tries every order that respects real time, with memoization. Exponential; for
/// validating `Checker` on small histories only.
///
/// The model: N units, a per-user limit, grants with strictly increasing fences. A grant
/// needs its unit free and its shopper under the limit; sold out needs every unit taken;
/// limit reached needs the shopper at the limit; an unanswered claim either does nothing or
/// takes some free unit within its shopper's limit (its fence is unknown, so it is not
/// ordered by fence).
public enum ExhaustiveSearch {
    /// Whether the history is linearizable.
    public static func isLinearizable(_ history: History) -> Bool {
        let operations = history.operations
        let count = operations.count
        precondition(count <= 20, "the exhaustive search is for small histories")
        let shoppers = Array(Set(operations.map(\.shopper))).sorted()
        let shopperIndex = Dictionary(uniqueKeysWithValues: shoppers.enumerated().map { ($1, $0) })
        // must[b] = operations that must come before b (a answered before b was sent).
        let must: [UInt32] = operations.map { b in
            var mask: UInt32 = 0
            for (index, a) in operations.enumerated() {
                if let response = a.response, response < b.invoke { mask |= 1 << UInt32(index) }
            }
            return mask
        }
        struct State: Hashable {
            var done: UInt32
            var taken: UInt64  // units taken (bit per unit)
            var perShopper: [Int]
            var lastFence: Int64
        }
        var failed = Set<State>()

        func search(_ state: State) -> Bool {
            if state.done == (count == 32 ? UInt32.max : (1 << UInt32(count)) - 1) { return true }
            if failed.contains(state) { return false }
            for index in 0..<count where state.done & (1 << UInt32(index)) == 0 {
                guard must[index] & ~state.done == 0 else { continue }
                let operation = operations[index]
                let shopper = shopperIndex[operation.shopper]!
                var next = state
                next.done |= 1 << UInt32(index)
                let takenCount = state.taken.nonzeroBitCount
                switch operation.result {
                case .held(let unit, let fence):
                    guard unit >= 0, unit < history.units, state.taken & (1 << UInt64(unit)) == 0,
                        state.perShopper[shopper] < history.perUserLimit, fence > state.lastFence
                    else { continue }
                    next.taken |= 1 << UInt64(unit)
                    next.perShopper[shopper] += 1
                    next.lastFence = fence
                    if search(next) { return true }
                case .soldOut:
                    guard takenCount == history.units else { continue }
                    if search(next) { return true }
                case .limitReached:
                    guard state.perShopper[shopper] >= history.perUserLimit else { continue }
                    if search(next) { return true }
                case .confirmed:
                    // Confirms are checked by the sale rules, outside this claim model.
                    if search(next) { return true }
                case .unknown:
                    if search(next) { return true }  // it did nothing
                    guard state.perShopper[shopper] < history.perUserLimit else { continue }
                    for unit in 0..<history.units where state.taken & (1 << UInt64(unit)) == 0 {
                        var took = next
                        took.taken |= 1 << UInt64(unit)
                        took.perShopper[shopper] += 1
                        if search(took) { return true }
                    }
                }
            }
            failed.insert(state)
            return false
        }
        return search(State(done: 0, taken: 0, perShopper: Array(repeating: 0, count: shoppers.count), lastFence: .min))
    }
}
