import DibsClient

/// Connections shared by the confirms, which come at random times.
actor ConnectionPool {
    private let host: String
    private let port: Int
    private let size: Int
    private var idle: [HTTP1Connection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<HTTP1Connection?, Never>] = []

    init(host: String, port: Int, size: Int) {
        self.host = host
        self.port = port
        self.size = size
    }

    func send(
        _ method: String, _ path: String, headers: [(String, String)], body: [UInt8], timeout: Duration
    ) async throws -> HTTPReply {
        let connection = try await acquire()
        do {
            let reply = try await connection.send(method, path, headers: headers, body: body, timeout: timeout)
            giveBack(connection)
            return reply
        } catch {
            connection.close()
            open -= 1
            // A slot is free again: a waiter opens a connection of its own.
            if !waiters.isEmpty { waiters.removeFirst().resume(returning: nil) }
            throw error
        }
    }

    private func acquire() async throws -> HTTP1Connection {
        // One the server closed while it sat idle frees its slot.
        while let connection = idle.popLast() {
            if connection.isActive { return connection }
            connection.close()
            open -= 1
        }
        if open < size {
            open += 1
            do { return try await HTTP1Connection.connect(host: host, port: port) } catch {
                open -= 1
                if !waiters.isEmpty { waiters.removeFirst().resume(returning: nil) }
                throw error
            }
        }
        if let connection = await withCheckedContinuation({ waiters.append($0) }) { return connection }
        return try await acquire()
    }

    private func giveBack(_ connection: HTTP1Connection) {
        if !waiters.isEmpty {
            waiters.removeFirst().resume(returning: connection)
        } else {
            idle.append(connection)
        }
    }

    func close() {
        idle.forEach { $0.close() }
        idle.removeAll()
        waiters.forEach { $0.resume(returning: nil) }
        waiters.removeAll()
    }
}
