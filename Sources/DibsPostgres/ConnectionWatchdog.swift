import DibsCore
import PostgresNIO
import Synchronization

/// Fails calls that wait for a pooled connection while Postgres is down, instead of
/// letting them queue in the pool until its circuit breaker trips a minute later.
///
/// A call runs its body in a task of its own and waits on a continuation; one scanner task
/// (alive only while calls wait) checks the waiting calls every `wait`, probes the server
/// once, and fails the ones that waited too long. A call is either leased or failed, never
/// both, so a failed call has sent nothing.
final class ConnectionWatchdog: Sendable {
    private struct Waiting {
        let since: ContinuousClock.Instant
        let fail: @Sendable (DibsError) -> Void
    }
    private struct State {
        var waiting: [UInt64: Waiting] = [:]
        var nextID: UInt64 = 0
        var scanning = false
    }

    private let state = Mutex(State())
    private let health: ServerHealth
    private let wait: Duration
    private let longest: Duration
    private let name: String

    init(health: ServerHealth, wait: Duration, longest: Duration, name: String) {
        self.health = health
        self.wait = wait
        self.longest = longest
        self.name = name
    }

    func withConnection<Result: Sendable>(
        _ client: PostgresClient, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let call = PendingCall<Result>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                call.install(continuation)
                let id = register { error in call.fail(error) }
                call.start {
                    do {
                        let result = try await client.withConnection { connection in
                            self.unregister(id)
                            guard call.markLeased() else { throw CancellationError() }
                            return try await body(connection)
                        }
                        call.finish(.success(result))
                    } catch {
                        self.unregister(id)
                        call.finish(.failure(error))
                    }
                }
            }
        } onCancel: {
            call.fail(CancellationError())
        }
    }

    private func register(_ fail: @escaping @Sendable (DibsError) -> Void) -> UInt64 {
        let (id, startScanner) = state.withLock { state in
            state.nextID += 1
            state.waiting[state.nextID] = Waiting(since: .now, fail: fail)
            let start = !state.scanning
            state.scanning = true
            return (state.nextID, start)
        }
        if startScanner { Task { await self.scan() } }
        return id
    }

    private func unregister(_ id: UInt64) {
        state.withLock { _ = $0.waiting.removeValue(forKey: id) }
    }

    /// Runs while calls wait; ends when none does.
    private func scan() async {
        while true {
            try? await Task.sleep(for: wait)
            let now = ContinuousClock.now
            let overdue = state.withLock { state -> [(UInt64, Waiting)] in
                if state.waiting.isEmpty { state.scanning = false }
                return state.waiting.filter { now - $0.value.since >= wait }.map { ($0.key, $0.value) }
            }
            if overdue.isEmpty {
                if state.withLock({ !$0.scanning }) { return }
                continue
            }
            let accepting = await health.isAccepting()
            for (id, call) in overdue where !accepting || now - call.since >= longest {
                unregister(id)
                call.fail(
                    accepting
                        ? DibsError(
                            .storeUnavailable, "no connection to \(name) within \(longest): the pool is exhausted")
                        : DibsError(.storeUnavailable, "\(name) refuses connections: is it running and reachable?"))
            }
        }
    }
}

/// One call's continuation and task: resumed once, by the body's result or by a failure
/// that came first; the body runs only if it leased before any failure.
private final class PendingCall<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var task: Task<Void, Never>?
        var leased = false
        var failure: (any Error)?
    }
    private let state = Mutex(State())

    func install(_ continuation: CheckedContinuation<Result, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func start(_ operation: @escaping @Sendable () async -> Void) {
        let task = Task { await operation() }
        state.withLock { $0.task = task }
    }

    /// Claims the right to run the body; false if the call already failed.
    func markLeased() -> Bool {
        state.withLock { state in
            guard state.failure == nil else { return false }
            state.leased = true
            return true
        }
    }

    func finish(_ result: Swift.Result<Result, any Error>) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
    }

    /// Fails the call unless its body is already running (then it finishes on its own).
    func fail(_ error: any Error) {
        let (continuation, task) = state.withLock {
            state -> (CheckedContinuation<Result, any Error>?, Task<Void, Never>?) in
            guard !state.leased, state.failure == nil else {
                return (nil, error is CancellationError ? state.task : nil)
            }
            state.failure = error
            defer { state.continuation = nil }
            return (state.continuation, state.task)
        }
        task?.cancel()
        continuation?.resume(throwing: error)
    }
}
