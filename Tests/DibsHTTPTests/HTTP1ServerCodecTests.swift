import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Testing
import XCTest

@testable import DibsHTTP

/// The answers' bytes as `HTTP1ServerCodec` writes them, framed as NIO's encoder framed them.
@Suite struct HTTP1ServerCodecTests {
    /// A channel that has read `requests`, and the parts they became.
    private func channel(reading requests: String) throws -> (EmbeddedChannel, [HTTPRequestPart]) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        try channel.pipeline.syncOperations.addHandler(HTTP1ServerCodec())
        try channel.writeInbound(ByteBuffer(string: requests))
        var parts: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
        return (channel, parts)
    }

    /// Each buffer written to the socket, as text.
    private func written(_ channel: EmbeddedChannel) throws -> [String] {
        var buffers: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(String(buffer: buffer)) }
        return buffers
    }

    /// Writes the parts as a responder does, then one flush.
    private func send(_ parts: HTTPResponsePart..., to channel: EmbeddedChannel) {
        for part in parts { channel.write(part, promise: nil) }
        channel.flush()
    }

    private func answer(_ status: HTTPResponse.Status, _ fields: HTTPFields = [:]) -> HTTPResponsePart {
        .head(HTTPResponse(status: status, headerFields: fields))
    }

    @Test func anAnswerWithItsLengthLeavesInOneBuffer() throws {
        let (channel, parts) = try channel(reading: "POST /v1/drops/d/claims HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .head(let request) = parts.first else { Issue.record("no head: \(parts)"); return }
        #expect(request.path == "/v1/drops/d/claims" && request.method == .post)
        let (head, body, done) = (
            channel.eventLoop.makePromise(of: Void.self), channel.eventLoop.makePromise(of: Void.self),
            channel.eventLoop.makePromise(of: Void.self)
        )
        channel.write(answer(.created, [.contentType: "application/json", .contentLength: "11"]), promise: head)
        channel.write(HTTPResponsePart.body(ByteBuffer(string: #"{"unit":17}"#)), promise: body)
        channel.writeAndFlush(HTTPResponsePart.end(nil), promise: done)
        #expect(
            try written(channel) == [
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"unit\":17}"
            ])
        // Every part's promise is kept, though the three went out as one write.
        for promise in [head, body, done] { try promise.futureResult.wait() }
    }

    @Test func anAnswerWithoutALengthIsChunked() throws {
        let (channel, _) = try channel(reading: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        try channel.writeOutbound(answer(.ok, [.transferEncoding: "gzip"]))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer(string: "hello")))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer()))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer(string: String(repeating: "x", count: 26))))
        try channel.writeOutbound(HTTPResponsePart.end([.init("Checksum")!: "abc"]))
        #expect(
            try written(channel).joined() == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5\r\nhello\r\n1a\r\n\(String(repeating: "x", count: 26))\r\n0\r\nChecksum: abc\r\n\r\n")
    }

    @Test func anAnswerToHeadHasItsFieldsButNoBody() throws {
        let (channel, _) = try channel(
            reading: "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let refused = channel.eventLoop.makePromise(of: Void.self)
        channel.write(answer(.ok, [.contentLength: "15"]), promise: nil)
        channel.write(HTTPResponsePart.body(ByteBuffer(string: #"{"status":"ok"}"#)), promise: refused)
        send(.end(nil), to: channel)
        #expect(throws: HTTP1ServerCodec.BodyNotAllowed.self) { try refused.futureResult.wait() }
        // The next answer, to the GET, has its body again.
        send(
            answer(.ok, [.contentLength: "15"]), .body(ByteBuffer(string: #"{"status":"ok"}"#)), .end(nil), to: channel)
        #expect(
            try written(channel) == [
                "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}",
            ])
    }

    @Test func statusesWithoutABodyLoseTheirFraming() throws {
        let (channel, _) = try channel(reading: "DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n")
        send(
            answer(.noContent, [.contentLength: "0", .transferEncoding: "chunked", .server: "dibs"]), .end(nil),
            to: channel)
        #expect(try written(channel) == ["HTTP/1.1 204 No Content\r\nServer: dibs\r\n\r\n"])
    }

    @Test func aLargeBodyIsWrittenOnItsOwnAfterItsHead() throws {
        let (channel, _) = try channel(reading: "GET /v1/openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n")
        let body = String(repeating: "y", count: HTTP1ServerCodec.bodyBytesJoinedToHead + 1)
        send(
            answer(.ok, [.contentLength: String(body.utf8.count)]), .body(ByteBuffer(string: body)), .end(nil),
            to: channel)
        #expect(try written(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 16385\r\n\r\n", body])
    }

    @Test func aFlushSendsAHeadThatWaitsForItsBody() throws {
        let (channel, _) = try channel(reading: "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.writeAndFlush(answer(.ok, [.contentLength: "2"]), promise: nil)
        #expect(try written(channel) == ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"])
        send(.body(ByteBuffer(string: "ok")), .end(nil), to: channel)
        #expect(try written(channel) == ["ok"])
    }
}

/// The codec in the server, over a real socket.
final class HTTP1AnswersOnTheSocketTests: XCTestCase {
    func testPipelinedAnswersAreFramedForTheirRequests() async throws {
        try await TestServer().test(live: true) { _, port in
            let port = try XCTUnwrap(port)
            let text = try await RawConnection.exchange(
                "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", port: port)
            let answers = text.components(separatedBy: "HTTP/1.1 ").dropFirst()
            XCTAssertEqual(answers.map { String($0.prefix(3)) }, ["405", "200", "404"], text)
            // HEAD: the fields of a GET's answer, no body; the others have theirs.
            let bodies = answers.map { $0.components(separatedBy: "\r\n\r\n").dropFirst().joined() }
            XCTAssertEqual(bodies.first, "", text)
            XCTAssertTrue(answers.first?.lowercased().contains("content-length: ") ?? false, text)
            XCTAssertEqual(bodies.dropFirst().first, #"{"status":"ok"}"#, text)
            XCTAssertTrue(bodies.last?.contains(#""status":404"#) ?? false, text)
        }
    }
}
