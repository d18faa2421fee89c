private import CHiredis

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

/// RESP encoding and decoding by hiredis: the one place Dibs touches C.
///
/// `encode` formats a command with `redisFormatCommandArgv` (freed with `redisFreeCommand`);
/// `RESPDecoder` feeds bytes to a `redisReader` and copies each top-level reply into a
/// `RESPValue` before freeing it with `freeReplyObject` (which frees the nested elements).
enum RESPCodec {
    /// The wire bytes of a command. The arguments are laid end to end in one buffer, and
    /// hiredis gets a pointer and a length into it for each.
    static func encode(_ arguments: [[UInt8]]) -> [UInt8] {
        let joined = arguments.flatMap { $0 }
        let lengths = arguments.map(\.count)
        var target: UnsafeMutablePointer<CChar>?
        let length = joined.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress)
            var offset = 0
            var argv: [UnsafePointer<CChar>?] = lengths.map { length in
                defer { offset += length }
                return base.map { ($0 + offset).assumingMemoryBound(to: CChar.self) }
            }
            return redisFormatCommandArgv(&target, Int32(arguments.count), &argv, lengths)
        }
        guard length > 0, let target else { return [] }
        defer { redisFreeCommand(target) }
        return target.withMemoryRebound(to: UInt8.self, capacity: Int(length)) {
            Array(UnsafeBufferPointer(start: $0, count: Int(length)))
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
