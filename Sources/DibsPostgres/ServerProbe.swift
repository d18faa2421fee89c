#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Tells "Postgres is down" from "the pool is busy": a plain TCP connect to the server's
/// port, with a timeout. Refused or unreachable means down; accepted means up (though it
/// may still be slow or paused).
enum ServerProbe {
    static func isAccepting(host: String, port: Int, timeoutMilliseconds: Int32 = 500) -> Bool {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &results) == 0, let first = results else { return false }
        defer { freeaddrinfo(results) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 { return true }
        guard errno == EINPROGRESS else { return false }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) == 1 else { return false }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error == 0
    }
}

/// One probe at a time for all the calls that wait on the pool, its answer shared for a
/// moment: thousands of waiting claims must not open thousands of sockets to ask.
actor ServerHealth {
    private let host: String
    private let port: Int
    private var last: (at: ContinuousClock.Instant, accepting: Bool)?
    private var inFlight: Task<Bool, Never>?

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func isAccepting() async -> Bool {
        if let last, ContinuousClock.now - last.at < .milliseconds(250) { return last.accepting }
        if let inFlight { return await inFlight.value }
        let (host, port) = (host, port)
        let probe = Task.detached { ServerProbe.isAccepting(host: host, port: port, timeoutMilliseconds: 1000) }
        inFlight = probe
        let accepting = await probe.value
        last = (ContinuousClock.now, accepting)
        inFlight = nil
        return accepting
    }
}
