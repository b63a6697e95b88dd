// SPDX-License-Identifier: MIT

/// A JSON value, written the way `vpnd show --json` always has (Foundation's JSONSerialization
/// with sorted keys, pretty printing and unescaped slashes): two-space indentation, `"key" : value`,
/// keys in code-point order, an empty object or array as an opening and a closing line with an
/// empty line between.
enum JSONValue {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The pretty-printed text, without a final newline.
    var prettyText: String {
        var out = ""
        write(to: &out, indent: 0)
        return out
    }

    private func write(to out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .unsigned(let value): out += String(value)
        case .double(let value): out += JSONValue.number(value)
        case .string(let value): JSONValue.quote(value, to: &out)
        case .array(let elements):
            out += "[\n"
            for (i, element) in elements.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                element.write(to: &out, indent: indent + 2)
                if i < elements.count - 1 { out += "," }
                out += "\n"
            }
            if elements.isEmpty { out += "\n" }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let members):
            out += "{\n"
            let keys = members.keys.sorted()
            for (i, key) in keys.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                JSONValue.quote(key, to: &out)
                out += " : "
                members[key]!.write(to: &out, indent: indent + 2)
                if i < keys.count - 1 { out += "," }
                out += "\n"
            }
            if keys.isEmpty { out += "\n" }
            out += String(repeating: " ", count: indent) + "}"
        }
    }

    /// Swift's shortest round-trip form, without a trailing ".0" (5.0 is written 5).
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        let text = value.description
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    static func quote(_ string: String, to out: inout String) {
        out += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{8}": out += "\\b"
            case "\u{c}": out += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
