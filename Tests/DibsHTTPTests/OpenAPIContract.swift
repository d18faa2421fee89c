import DibsCore
import DibsHTTP
import Foundation
import OpenAPIKit
import Yams

/// The OpenAPI document as the server serves it, parsed and with every `$ref` resolved.
enum OpenAPIContract {
    static let document: OpenAPI.Document = {
        let text = String(decoding: OpenAPIDocument.bytes, as: UTF8.self)
        do {
            return try YAMLDecoder().decode(OpenAPI.Document.self, from: text)
        } catch {
            fatalError("the served OpenAPI document does not parse: \(error)")
        }
    }()

    nonisolated(unsafe) static let dereferenced: DereferencedDocument = {
        do { return try document.locallyDereferenced() } catch { fatalError("a $ref does not resolve: \(error)") }
    }()

    /// The operation for a concrete request path (`/v1/claims/d.1`), by template.
    static func operation(method: String, path: String) -> (template: String, operation: DereferencedOperation?)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for (template, item) in dereferenced.paths {
            let pattern = template.rawValue.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == parts.count,
                zip(pattern, parts).allSatisfy({ t, p in (t.hasPrefix("{") && !p.isEmpty) || t == p })
            else { continue }
            let operation = item.endpoints.first { $0.method.rawValue.uppercased() == method.uppercased() }?.operation
            return (template.rawValue, operation)
        }
        return nil
    }
}

/// A JSON value, decoded strictly enough to tell booleans, integers and numbers apart.
indirect enum JSONValue: Decodable, CustomStringConvertible {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): String(value)
        case .integer(let value): String(value)
        case .number(let value): String(value)
        case .string(let value): "\"\(value)\""
        case .array(let values): "[\(values.map(\.description).joined(separator: ","))]"
        case .object(let fields): "{\(fields.keys.sorted().joined(separator: ","))}"
        }
    }

    /// The value as an enum member compares: strings bare, null as nil.
    var enumValue: String? {
        switch self {
        case .null: nil
        case .string(let value): value
        default: description
        }
    }
}

/// Checks a JSON value against a (dereferenced) JSON Schema: types, nullability, enums,
/// required properties, no undeclared properties where `additionalProperties: false`,
/// formats of date-times, and the combinators. Returns what is wrong, empty if nothing.
enum SchemaCheck {
    static func problems(_ value: JSONValue, _ schema: DereferencedJSONSchema, at path: String = "$") -> [String] {
        if case .null = value, schema.nullable { return [] }
        var found: [String] = []
        if let allowed = schema.allowedValues {
            let members = allowed.map { $0.value as? String ?? ($0.value is NSNull ? nil : "\($0.value)") }
            if !members.contains(where: { $0 == value.enumValue }) {
                found.append("\(path): \(value) is not one of \(members.map { $0 ?? "null" })")
            }
        }
        switch (schema, value) {
        case (.null, .null), (.boolean, .bool), (.integer, .integer), (.number, .integer), (.number, .number),
            (.fragment, _):
            break
        case (.string(let core, _), .string(let text)):
            if core.format == .dateTime && RFC3339.parse(text) == nil {
                found.append("\(path): \"\(text)\" is not an RFC 3339 date-time")
            }
        case (.object(_, let context), .object(let fields)):
            for name in context.requiredProperties where fields[name] == nil {
                found.append("\(path): the required property \"\(name)\" is missing")
            }
            for (name, field) in fields {
                if let property = context.properties[name] {
                    found += problems(field, property, at: "\(path).\(name)")
                } else if case .a(false) = context.additionalProperties {
                    found.append("\(path): the property \"\(name)\" is not in the schema")
                }
            }
        case (.all(let schemas, _), _):
            for schema in schemas { found += problems(value, schema, at: path) }
        case (.one(let schemas, _), _), (.any(let schemas, _), _):
            if !schemas.contains(where: { problems(value, $0, at: path).isEmpty }) {
                found.append("\(path): \(value) matches none of the alternatives")
            }
        default:
            found.append("\(path): \(value) is not of the schema's type")
        }
        return found
    }
}
