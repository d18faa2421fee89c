/// Splits a migration file into statements. Postgres's extended protocol (all PostgresNIO
/// speaks) takes one statement at a time, and function bodies hold semicolons, so the split
/// respects quotes, dollar quotes and comments.
enum SQLScript {
    static func statements(_ script: String) -> [String] {
        let text = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0
        func flush() {
            let statement = String(current).trimmingWhitespace
            if !statement.isEmpty { statements.append(statement) }
            current = String.UnicodeScalarView()
        }
        while index < text.count {
            let c = text[index]
            let next = index + 1 < text.count ? text[index + 1] : nil
            if c == "-" && next == "-" {  // line comment: skip to end of line
                while index < text.count && text[index] != "\n" { index += 1 }
                continue
            }
            if c == "/" && next == "*" {  // block comment
                index += 2
                while index + 1 < text.count && !(text[index] == "*" && text[index + 1] == "/") { index += 1 }
                index += 2
                continue
            }
            if c == "'" || c == "\"" {  // quoted literal or identifier; doubled quotes stay inside
                current.append(c)
                index += 1
                while index < text.count {
                    current.append(text[index])
                    if text[index] == c {
                        if index + 1 < text.count && text[index + 1] == c {
                            current.append(text[index + 1])
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                index += 1
                continue
            }
            if c == "$", let tagEnd = dollarTagEnd(text, from: index) {  // $tag$ … $tag$
                let tag = Array(text[index...tagEnd])
                current.append(contentsOf: tag)
                index = tagEnd + 1
                while index < text.count {
                    if text[index] == "$" && index + tag.count <= text.count
                        && Array(text[index..<index + tag.count]) == tag
                    {
                        current.append(contentsOf: tag)
                        index += tag.count
                        break
                    }
                    current.append(text[index])
                    index += 1
                }
                continue
            }
            if c == ";" {
                flush()
            } else {
                current.append(c)
            }
            index += 1
        }
        flush()
        return statements
    }

    /// The index of the closing `$` of a dollar-quote tag starting at `start`, if it is one.
    private static func dollarTagEnd(_ text: [Unicode.Scalar], from start: Int) -> Int? {
        var index = start + 1
        while index < text.count {
            let c = text[index]
            if c == "$" { return index }
            guard c == "_" || c.properties.isAlphabetic || (index > start + 1 && ("0"..."9").contains(c)) else {
                return nil
            }
            index += 1
        }
        return nil
    }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
