import DibsCore
public import Prometheus
import Synchronization

/// The service's Prometheus metrics. Instruments are made once and kept, so recording on
/// the hot path is a lock-free add, not a registry lookup.
public final class DibsMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let claims: [String: Counter]
    /// Claims the HTTP layer answered on the event loop that read them, without the router
    /// (also counted in `claims`).
    private let claimsOnEventLoop: Counter
    /// One histogram per route, made up front: recording needs no lock.
    private let routeLatencies: [String: DurationHistogram]
    private let otherLatencies = Mutex<[String: DurationHistogram]>([:])
    /// Answers by HTTP status, made up front for every status Dibs gives: counting needs no lock.
    private let answers: [Int: Counter]
    private let otherAnswers = Mutex<[Int: Counter]>([:])
    private let storeErrors = Mutex<[String: Counter]>([:])
    private let dropGauges = Mutex<[String: Gauge]>([:])

    /// Every outcome a claim is counted under.
    static let claimOutcomes = [
        "held", "waitlisted", "entered", "sold-out", "limit-reached", "drop-not-open", "drop-closed",
        "drop-cancelled", "replayed", "rate-limited", "error",
    ]
    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5),
    ]

    /// Makes the instruments in a new registry.
    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let descriptor = MetricNameDescriptor(
            namespace: "dibs", metricName: "claims", unitName: "total", helpText: "Claims answered, by outcome")
        claims = Dictionary(
            uniqueKeysWithValues: Self.claimOutcomes.map {
                ($0, registry.makeCounter(descriptor: descriptor, labels: [("outcome", $0)]))
            })
        claimsOnEventLoop = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "dibs", metricName: "claims_answered_on_event_loop", unitName: "total",
                helpText: "Claims answered on the event loop that read them, without the router"))
        routeLatencies = Dictionary(
            uniqueKeysWithValues: Routes.all.map { route in (route.path, Self.makeLatency(registry, route.path)) })
        answers = Dictionary(
            uniqueKeysWithValues: Set([200, 201, 202] + ProblemKind.all.map(\.status)).map { status in
                (status, Self.makeAnswers(registry, status))
            })
    }

    private static func makeAnswers(_ registry: PrometheusCollectorRegistry, _ status: Int) -> Counter {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "dibs", metricName: "http_responses", unitName: "total",
                helpText:
                    "Answers written, by HTTP status: every request's, and those to requests that could not be read"),
            labels: [("status", String(status))])
    }

    private static func makeLatency(_ registry: PrometheusCollectorRegistry, _ route: String) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "dibs", metricName: "request_duration", unitName: "seconds",
                helpText: "Time to answer a request, by route"),
            labels: [("route", route)], buckets: latencyBuckets)
    }

    func claim(_ outcome: String) {
        claims[outcome]?.increment()
    }

    func claimAnsweredOnEventLoop() { claimsOnEventLoop.increment() }

    func request(route: String, status: Int, took duration: Duration) {
        answered(status: status)
        if let histogram = routeLatencies[route] { return histogram.record(duration) }
        Self.instrument(route, in: otherLatencies) { Self.makeLatency(registry, route) }.record(duration)
    }

    /// An answer written with `status` (counted by `request` for the requests it times).
    func answered(status: Int) {
        if let counter = answers[status] { return counter.increment() }
        Self.instrument(status, in: otherAnswers) { Self.makeAnswers(registry, status) }.increment()
    }

    func storeError(_ code: String) {
        Self.instrument(code, in: storeErrors) {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: "dibs", metricName: "store_errors", unitName: "total",
                    helpText: "Errors from the lease stores and the stores of keys, limits and idempotency, by code"),
                labels: [("code", code)])
        }.increment()
    }

    /// Sets a drop's live counts (leases held, waitlist length, units sold and free).
    func record(_ snapshot: DropSnapshot) {
        let drop = snapshot.drop.rawValue
        for (name, help, value) in [
            ("leases_held", "Units held under a lease", snapshot.held),
            ("waitlist_length", "Claims waiting for a unit", snapshot.waitlisted),
            ("units_sold", "Units sold", snapshot.sold),
            ("units_free", "Units free", snapshot.free),
        ] {
            Self.instrument(name + "|" + drop, in: dropGauges) {
                registry.makeGauge(
                    descriptor: MetricNameDescriptor(namespace: "dibs", metricName: name, unitName: "", helpText: help),
                    labels: [("drop", drop)])
            }.set(Double(value))
        }
    }

    /// The instrument kept under `key`, made by `make` the first time it is asked for.
    private static func instrument<Key: Hashable & Sendable, Instrument: Sendable>(
        _ key: Key, in made: borrowing Mutex<[Key: Instrument]>, _ make: () -> Instrument
    ) -> Instrument {
        made.withLock { instruments in
            if let existing = instruments[key] { return existing }
            let instrument = make()
            instruments[key] = instrument
            return instrument
        }
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
