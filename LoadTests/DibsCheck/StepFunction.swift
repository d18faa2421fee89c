/// Where an event or an answer sits in the checker's linearization: by time, then by rank
/// (what may come first among simultaneous steps), then by fence and id.
struct SortKey: Comparable, Hashable {
    let time: Int64
    let rank: Int
    let fence: Int64
    let id: Int

    static func < (a: SortKey, b: SortKey) -> Bool {
        (a.time, a.rank, a.fence, a.id) < (b.time, b.rank, b.fence, b.id)
    }

    /// Ranks among steps at one instant: a lease handed over (the old one ends just before the
    /// next is granted, both at `grant`), grants, unanswered claims taking units, confirms,
    /// releases and expiries, and a step placed after everything at its instant.
    static let grant = 1, unknownTake = 2, confirm = 3, answer = 4, release = 5, expiry = 6, afterAll = 7
}

/// A count over the linearization (units taken, or one shopper's live claims) as a step
/// function of the position in an ordered list of steps, asked for its largest value where an
/// answer with a given time window may be placed: between steps p-1 and p when step p-1 is
/// no later than the window's end and step p no earlier than its start. O(m log m) to build
/// from m steps, O(log m) a question.
struct StepFunction {
    private let times: [Int64]
    /// values[p]: the count after the first p steps.
    private var values: [Int] = [0]
    private var tree: [Int32] = []
    private var size = 1

    /// `times` in order (non-decreasing), with each step's change of the count.
    init(times: [Int64], deltas: [Int]) {
        self.times = times
        for delta in deltas { values.append(values.last! + delta) }
        while size < values.count { size *= 2 }
        tree = Array(repeating: -1, count: 2 * size)
        for position in values.indices { tree[size + position] = Int32(position) }
        for node in stride(from: size - 1, through: 1, by: -1) {
            tree[node] = better(tree[2 * node], tree[2 * node + 1])
        }
    }

    private func better(_ a: Int32, _ b: Int32) -> Int32 {
        if a < 0 { return b }
        if b < 0 { return a }
        return values[Int(b)] > values[Int(a)] ? b : a
    }

    /// The first position whose next step is at or after `time`.
    func firstPosition(notBefore time: Int64) -> Int { Checker.firstIndex(in: times) { $0 >= time } }

    /// The largest value over the positions an answer sent at `from` and answered at `to` may
    /// take, and the first position holding it.
    func best(from: Int64, to: Int64) -> (value: Int, position: Int) {
        // A window that ends before it begins has no place; the replay then refuses it.
        guard from <= to else {
            let position = firstPosition(notBefore: from)
            return (values[position], position)
        }
        var low = firstPosition(notBefore: from) + size
        var high = Checker.firstIndex(in: times) { $0 > to } + size + 1
        var found: Int32 = -1
        while low < high {
            if low & 1 == 1 {
                found = better(found, tree[low])
                low += 1
            }
            if high & 1 == 1 {
                high -= 1
                found = better(found, tree[high])
            }
            low /= 2
            high /= 2
        }
        return (values[Int(found)], Int(found))
    }
}
