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
    /// then answers that read the state, then releases and expiries (so that answers at the
    /// same instant still see those units taken).
    static let grant = 1, unknownTake = 2, confirm = 3, answer = 4, release = 5, expiry = 6, afterAll = 7
    /// An answer after everything at its instant (unanswered claims taking a freed unit too).
    static let answerLast = 8
}

/// A count over the linearization (units taken, or one shopper's live claims) as a step
/// function, asked for its largest value over a time window and where to place an answer to
/// see it. O(m log m) to build from m events, O(log m) a question.
struct StepFunction {
    private var times: [Int64] = []
    /// values[2j] holds after every event at times[j-1] (index 0: before any event);
    /// values[2j-1] holds at times[j-1] before ranks from `answer` on.
    private var values: [Int] = []
    private var tree: [Int32] = []
    private var size = 1

    init(events: [(key: SortKey, delta: Int)]) {
        let sorted = events.sorted { $0.key < $1.key }
        var value = 0
        values.append(0)
        var index = 0
        while index < sorted.count {
            let time = sorted[index].key.time
            while index < sorted.count, sorted[index].key.time == time, sorted[index].key.rank < SortKey.answer {
                value += sorted[index].delta
                index += 1
            }
            let atAnswer = value
            while index < sorted.count, sorted[index].key.time == time {
                value += sorted[index].delta
                index += 1
            }
            times.append(time)
            values.append(atAnswer)
            values.append(value)
        }
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

    /// The largest value anywhere in [from, to], and a key that places an answer there.
    func best(from: Int64, to: Int64, id: Int) -> (value: Int, key: SortKey) {
        let before = Checker.firstIndex(in: times) { $0 >= from }  // events strictly before `from`
        let through = Checker.firstIndex(in: times) { $0 > to }  // events up to `to`
        var low = 2 * before + size
        var high = 2 * through + size + 1
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
        let position = Int(found)
        let key: SortKey
        if position == 2 * before {
            key = SortKey(time: from, rank: 0, fence: .min, id: id)
        } else {
            let time = times[(position - 1) / 2]
            key = SortKey(time: time, rank: position % 2 == 1 ? SortKey.answer : SortKey.answerLast, fence: 0, id: id)
        }
        return (values[position], key)
    }
}
