import Foundation
import LeaseStoreConformance
import XCTest

/// The real `dibs serve` binary: on SIGTERM it stops accepting connections, finishes the
/// request in flight, then exits 0.
final class GracefulShutdownTests: XCTestCase {
    func testSIGTERMFinishesTheRequestInFlight() async throws {
        // The build directory holds the test bundle and the `dibs` executable side by side.
        var directory = Bundle.main.bundleURL
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        let binary = directory.appendingPathComponent("dibs")
        let server = Process()
        server.executableURL = binary
        server.arguments = ["serve", "--store", "memory", "--port", "0", "--log-level", "warning"]
        let output = Pipe()
        server.standardOutput = output
        try server.run()
        defer { if server.isRunning { server.terminate() } }

        var text = ""
        let reader = output.fileHandleForReading
        while !text.contains("listening on") {
            let chunk = reader.availableData
            guard !chunk.isEmpty else { throw SetupError(description: "dibs serve ended early: \(text)") }
            text += String(decoding: chunk, as: UTF8.self)
        }
        func value(after marker: String) -> String? {
            text.components(separatedBy: "\n").first { $0.contains(marker) }?.components(separatedBy: " ").last
        }
        let operatorKey = try XCTUnwrap(value(after: "operator API key"))
        let storefrontKey = try XCTUnwrap(value(after: "storefront API key"))
        let address = text.components(separatedBy: "http://127.0.0.1:").last ?? ""
        let port = try XCTUnwrap(Int(address.prefix { $0.isNumber }), text)

        let create = #"{"id":"graceful","units":1}"#
        let created = try RawHTTP.exchange(
            port: port,
            "POST /v1/admin/drops HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(operatorKey)\r\n"
                + "Idempotency-Key: g\r\nContent-Type: application/json\r\nContent-Length: \(create.utf8.count)\r\n"
                + "Connection: close\r\n\r\n\(create)")
        XCTAssertTrue(created.hasPrefix("HTTP/1.1 201"), created)

        // A claim whose body arrives in two parts, with SIGTERM in between.
        let body = #"{"user":"last-shopper"}"#
        let inFlight = try RawHTTP.connect(port: port)
        defer { close(inFlight) }
        try RawHTTP.write(
            inFlight,
            "POST /v1/drops/graceful/claims HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(storefrontKey)\r\n"
                + "Idempotency-Key: c\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body.prefix(5))
        try await Task.sleep(for: .milliseconds(300))
        kill(server.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(500))

        XCTAssertThrowsError(try RawHTTP.connect(port: port), "the server still accepts connections after SIGTERM")
        XCTAssertTrue(server.isRunning, "the server exited with a request in flight")

        try RawHTTP.write(inFlight, String(body.dropFirst(5)))
        let answer = try RawHTTP.readAll(inFlight)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 201"), "the request in flight got: \(answer)")

        for _ in 0..<100 where server.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertFalse(server.isRunning, "the server did not exit after its last request")
        XCTAssertEqual(server.terminationStatus, 0)
    }
}

/// Just enough HTTP/1.1 over a blocking socket to send a request in pieces.
enum RawHTTP {
    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw SetupError(description: "cannot connect to port \(port): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func write(_ fd: Int32, _ text: some StringProtocol) throws {
        let bytes = Array(text.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            throw SetupError(description: "send failed: errno \(errno)")
        }
    }

    static func readAll(_ fd: Int32) throws -> String {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    static func exchange(port: Int, _ request: String) throws -> String {
        let fd = try connect(port: port)
        defer { close(fd) }
        try write(fd, request)
        return try readAll(fd)
    }
}
