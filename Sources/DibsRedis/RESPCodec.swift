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
        writeHeader("*", arguments.count, &buffer)
        for argument in arguments {
            writeHeader("$", argument.count, &buffer)
            buffer.writeBytes(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// The room a command takes, to size its buffer once.
    static func capacity<Argument: Collection<UInt8>>(_ arguments: some Collection<Argument>) -> Int {
        arguments.reduce(16) { $0 + $1.count + 16 }
    }

    private static func writeHeader(_ kind: StaticString, _ count: Int, _ buffer: inout ByteBuffer) {
        buffer.writeStaticString(kind)
        buffer.writeString(String(count))  // a small String, kept inline: no allocation
        buffer.writeStaticString("\r\n")
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
