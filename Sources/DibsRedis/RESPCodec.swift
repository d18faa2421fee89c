private import CHiredis
import NIOCore

/// A Redis reply, copied out of hiredis so no C type leaves this file.
public enum RESPValue: Sendable, Hashable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RESPValue])

    /// The value as text, for bulk strings and statuses.
    public var text: String? {
        switch self {
        case .bulk(let bytes): String(decoding: bytes, as: UTF8.self)
        case .status(let text): text
        case .integer(let value): String(value)
        default: nil
        }
    }

    /// The value as an integer, for integers and numeric bulk strings.
    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk, .status: text.flatMap { Int64($0) }
        default: nil
        }
    }
}

/// RESP: commands are written here, replies decoded by hiredis (`RESPDecoder`, the one place
/// Dibs touches C; it copies each top-level reply into a `RESPValue` before freeing it with
/// `freeReplyObject`, which frees the nested elements).
enum RESPCodec {
    /// Writes a command — an array of bulk strings — into `buffer`, which the socket gets as
    /// is: one copy of its bytes (hiredis's formatter, with the arrays it took, made five).
    /// Text arguments are passed as their `utf8` views, which write without a copy in between.
    static func encode<Argument: Collection<UInt8>>(
        _ arguments: some Collection<Argument>, into buffer: inout ByteBuffer
    ) {
        writeHeader(UInt8(ascii: "*"), arguments.count, &buffer)
        for argument in arguments {
            writeHeader(UInt8(ascii: "$"), argument.count, &buffer)
            buffer.writeBytes(argument)
            buffer.writeInteger(crlf)
        }
    }

    /// `\r\n` as one integer, and headers written in place: written as static strings one
    /// by one (`*`, `$`, `\r\n`), they cost a claim's script call 1 % of `dibs serve`'s CPU.
    private static let crlf: UInt16 = 0x0D0A

    /// The room a command takes, to size its buffer once.
    static func capacity<Argument: Collection<UInt8>>(_ arguments: some Collection<Argument>) -> Int {
        arguments.reduce(16) { $0 + $1.count + 16 }
    }

    /// `kind`, `count` in decimal, `\r\n`, written in place.
    private static func writeHeader(_ kind: UInt8, _ count: Int, _ buffer: inout ByteBuffer) {
        var digits = 1
        var rest = count / 10
        while rest > 0 { (digits, rest) = (digits + 1, rest / 10) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits + 3) { out in
            out[0] = kind
            var value = count
            for index in stride(from: digits, through: 1, by: -1) {
                out[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
            out[digits + 1] = UInt8(ascii: "\r")
            out[digits + 2] = UInt8(ascii: "\n")
            return digits + 3
        }
    }
}

/// Decodes a stream of RESP replies; owns its `redisReader` and frees it on deinit.
final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit { redisReaderFree(reader) }

    /// Feeds bytes from the socket.
    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard redisReaderFeed(reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK else {
            throw RESPProtocolError(message: "hiredis refused the input")
        }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
            let message = withUnsafeBytes(of: reader.pointee.errstr) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw RESPProtocolError(message: "Redis sent a malformed reply: \(message)")
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.copy(reply.assumingMemoryBound(to: redisReply.self))
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let value = reply.pointee
        func bytes() -> [UInt8] {
            guard let str = value.str else { return [] }
            return str.withMemoryRebound(to: UInt8.self, capacity: Int(value.len)) {
                Array(UnsafeBufferPointer(start: $0, count: Int(value.len)))
            }
        }
        switch value.type {
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(value.integer)
        case REDIS_REPLY_STRING: return .bulk(bytes())
        case REDIS_REPLY_ARRAY:
            guard let elements = value.element else { return .array([]) }
            return .array((0..<Int(value.elements)).map { copy(elements[$0]!) })
        default: return .null
        }
    }
}

/// Redis sent bytes that are not RESP.
struct RESPProtocolError: Error {
    let message: String
}
