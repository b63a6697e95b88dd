// SPDX-License-Identifier: MIT

/// A problem in a configuration file or in a command-line override, with where it is.
///
/// Its ``description`` is the one line that start-up prints: `server.conf:7: ListenPort "70000"
/// is not a port number (1-65535)`, or `server.conf: [Interface] needs PrivateKey or
/// PrivateKeyFile` when no single line is at fault, or `--mtu: "9" is not a number between 576
/// and 65535` for a flag. Messages never contain private or pre-shared key material.
public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file name given to the parser, as it should appear in messages; empty for flags.
    public var fileName: String
    /// The 1-based line at fault, or 0 when the problem is not about one line.
    public var line: Int
    /// What is wrong and, where it helps, how to fix it.
    public var message: String

    public init(fileName: String, line: Int, message: String) {
        self.fileName = fileName
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, `FILE: message`, `line LINE: message` or just `message`.
    ///
    /// Always one line: control characters that came from the input (a flag holding a newline,
    /// a lone CR or an escape sequence in the file) are shown as `\u{...}` escapes.
    public var description: String {
        let text: String
        switch (fileName.isEmpty, line > 0) {
        case (false, true): text = "\(fileName):\(line): \(message)"
        case (false, false): text = "\(fileName): \(message)"
        case (true, true): text = "line \(line): \(message)"
        case (true, false): text = message
        }
        return Self.escapingControlCharacters(text)
    }

    /// `text` with every control character but tab, and the Unicode line and paragraph
    /// separators, replaced by a `\u{...}` escape.
    static func escapingControlCharacters(_ text: String) -> String {
        func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
            (scalar.properties.generalCategory == .control && scalar != "\t")
                || scalar == "\u{2028}" || scalar == "\u{2029}"
        }
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }
}

/// A bad value, described without saying where it came from; the caller adds the key or flag.
struct ValueProblem: Error {
    /// The predicate, e.g. `"70000" is not a port number (1-65535)`.
    var message: String

    init(_ message: String) { self.message = message }
}
