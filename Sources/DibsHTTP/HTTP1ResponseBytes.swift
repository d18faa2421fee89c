import HTTPTypes
import NIOCore

/// The bytes of HTTP/1.1 answers, written straight from HTTPTypes: a status line and header
/// fields, a body chunk, the last chunk. `HTTP1ServerCodec` decides what to write.
enum HTTP1ResponseBytes {
    /// How an answer's body is framed, decided from its head as NIO's `HTTPResponseEncoder`
    /// decides it (framing headers set for the writer).
    enum Framing: Equatable {
        /// Written as it comes: `Content-Length` says where it ends.
        case asIs
        /// `Transfer-Encoding: chunked`, as an answer without `Content-Length` gets.
        case chunked
        /// No body goes out: an answer to `HEAD` or `CONNECT`, or a status that has none.
        case none
    }

    /// The head's fields framed for its request's method (nil when not known): a status that
    /// has no body (1xx, 204, 304) and an answer to `CONNECT` lose `Content-Length` and
    /// `Transfer-Encoding`; one with `Content-Length` loses `Transfer-Encoding`; any other is
    /// chunked. An answer to `HEAD` keeps the fields a `GET` would have had, but no body.
    static func frame(_ response: inout HTTPResponse, method: HTTPRequest.Method?) -> Framing {
        // One pass over the fields: each `headerFields[name]` is a search of its own, and a
        // removal copies the fields, so only a field that is there is removed.
        var hasLength = false
        var hasEncoding = false
        for field in response.headerFields {
            if field.name == .contentLength {
                hasLength = true
            } else if field.name == .transferEncoding {
                hasEncoding = true
            }
        }
        let code = response.status.code
        if method == .connect || (100..<200).contains(code) || code == 204 || code == 304 {
            if hasLength { response.headerFields[.contentLength] = nil }
            if hasEncoding { response.headerFields[.transferEncoding] = nil }
            return .none
        }
        if hasLength {
            if hasEncoding { response.headerFields[.transferEncoding] = nil }
        } else {
            response.headerFields[.transferEncoding] = "chunked"
        }
        if method == .head { return .none }
        return hasLength ? .asIs : .chunked
    }

    /// `HTTP/1.1 <code> <reason>`, the fields, and the empty line.
    static func writeHead(_ response: HTTPResponse, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(response.status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(response.status.reasonPhrase)
        buffer.writeInteger(crlf)
        writeFields(response.headerFields, into: &buffer)
    }

    /// A chunk of a chunked body: its size in hex, the bytes, `\r\n`.
    static func writeChunk(_ chunk: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeString(String(chunk.readableBytes, radix: 16))
        buffer.writeInteger(crlf)
        buffer.writeImmutableBuffer(chunk)
        buffer.writeInteger(crlf)
    }

    /// The last chunk of a chunked body, with its trailers.
    static func writeLastChunk(trailers: HTTPFields?, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "0"))
        buffer.writeInteger(crlf)
        writeFields(trailers ?? [:], into: &buffer)
    }

    /// Each field as `name: value\r\n`, then `\r\n`.
    private static func writeFields(_ fields: HTTPFields, into buffer: inout ByteBuffer) {
        for field in fields {
            buffer.writeString(field.name.rawName)
            buffer.writeInteger(colonSpace)
            buffer.writeString(field.value)
            buffer.writeInteger(crlf)
        }
        buffer.writeInteger(crlf)
    }

    private static let crlf: UInt16 = 0x0D0A
    private static let colonSpace: UInt16 = 0x3A20
}
