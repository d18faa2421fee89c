/// A Wing–Gong search for a linearization of a small history against the sequential model:
/// it tries every order that respects real time, with memoization. Exponential; for
/// validating `Checker` on small histories only.
///
/// The model is `ClaimModel`: a grant needs its unit free and its shopper under the limit;
/// sold out needs every unit taken; limit reached needs the shopper at the limit; confirms
/// and releases need the lease they name to be the unit's current one; an expiry ends its
/// lease if still held; an unanswered claim does nothing or takes some free unit within its
/// shopper's limit.
public enum ExhaustiveSearch {
    /// Whether the history is linearizable.
    public static func isLinearizable(_ history: History) -> Bool {
        let operations = history.operations
        let count = operations.count
        precondition(count <= 20, "the exhaustive search is for small histories")
        // Fences are unique per drop: two answered grants under one fence cannot both be.
        var fences = Set<Int64>()
        for operation in operations {
            if case .held(_, let fence) = operation.result, operation.response != nil, !fences.insert(fence).inserted {
                return false
            }
        }
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
            var model: ClaimModel
        }
        let all: UInt32 = count == 32 ? .max : (1 << UInt32(count)) - 1
        var failed = Set<State>()

        func search(_ state: State) -> Bool {
            if state.done == all { return true }
            if failed.contains(state) { return false }
            for index in 0..<count where state.done & (1 << UInt32(index)) == 0 {
                guard must[index] & ~state.done == 0 else { continue }
                let operation = operations[index]
                let shopper = shopperIndex[operation.shopper]!
                var next = state
                next.done |= 1 << UInt32(index)
                if next.model.apply(operation.result, shopper: shopper), search(next) { return true }
                guard operation.result == .unknown else { continue }
                // An unanswered claim may also have taken any free unit.
                for unit in 0..<history.units {
                    var took = next
                    took.model = state.model
                    if took.model.takeUnknown(unit, shopper: shopper), search(took) { return true }
                }
            }
            failed.insert(state)
            return false
        }
        return search(
            State(
                done: 0,
                model: ClaimModel(units: history.units, perUserLimit: history.perUserLimit, shoppers: shoppers.count)))
    }
}
