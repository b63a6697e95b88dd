// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Value checks shared by the file parser and the command-line overrides.
///
/// Each returns the typed value or throws a ``ValueProblem`` whose message is a predicate
/// (`"70000" is not a port number (1-65535)`); the caller puts the key or the flag in front.
enum ConfigValues {
    /// A decimal number of at most `maxDigits` digits, no sign, no leading zeros; nil otherwise.
    static func decimal(_ text: String, maxDigits: Int = 9) -> Int? {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty, utf8.count <= maxDigits, utf8.count == 1 || utf8[0] != UInt8(ascii: "0") else { return nil }
        var value = 0
        for c in utf8 {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(c - UInt8(ascii: "0"))
        }
        return value
    }

    /// A port, 1...65535.
    static func port(_ text: String) throws(ValueProblem) -> UInt16 {
        guard let value = decimal(text), (1...65535).contains(value) else {
            throw ValueProblem("\"\(text)\" is not a port number (1-65535)")
        }
        return UInt16(value)
    }

    /// An MTU, ``Config/minimumMTU``...65535.
    static func mtu(_ text: String) throws(ValueProblem) -> Int {
        guard let value = decimal(text), (Config.minimumMTU...65535).contains(value) else {
            throw ValueProblem("\"\(text)\" is not a number between \(Config.minimumMTU) and 65535")
        }
        return value
    }

    /// `auto`, `off` (any case) or a maximum segment size from 536 (RFC 9293's default) to 65495.
    static func mssClamp(_ text: String) throws(ValueProblem) -> Config.MSSClampSetting {
        switch text.lowercased() {
        case "auto": return .auto
        case "off": return .off
        default:
            guard let value = decimal(text), (536...65495).contains(value) else {
                throw ValueProblem("\"\(text)\" is not auto, off or a segment size between 536 and 65495")
            }
            return .fixed(value)
        }
    }

    /// `on`/`off` (also yes/no, true/false), any case.
    static func onOff(_ text: String) throws(ValueProblem) -> Bool {
        switch text.lowercased() {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: throw ValueProblem("\"\(text)\" is not on or off")
        }
    }

    /// `tun` or `tap`, any case.
    static func mode(_ text: String) throws(ValueProblem) -> Config.Mode {
        guard let mode = Config.Mode(rawValue: text.lowercased()) else {
            throw ValueProblem("\"\(text)\" is not tun or tap")
        }
        return mode
    }

    /// `chacha20poly1305` or `aes256gcm` (also with dashes: `chacha20-poly1305`, `aes-256-gcm`), any case.
    static func cipher(_ text: String) throws(ValueProblem) -> TransportCipher {
        let word = String(text.lowercased().filter { $0 != "-" })
        guard let cipher = TransportCipher(rawValue: word) else {
            throw ValueProblem("\"\(text)\" is not chacha20poly1305 (the default, WireGuard's) or aes256gcm")
        }
        return cipher
    }

    /// The most packet threads `Threads` may ask for.
    static let maximumThreads = 64

    /// `auto` (nil) or a number of packet threads, 1 to ``maximumThreads``.
    static func threads(_ text: String) throws(ValueProblem) -> Int? {
        if text.lowercased() == "auto" { return nil }
        guard let value = decimal(text), (1...maximumThreads).contains(value) else {
            throw ValueProblem("\"\(text)\" is not auto or a number of threads between 1 and \(maximumThreads)")
        }
        return value
    }

    /// `udp`, `tcp` or `auto` (also written `udp,tcp` or `tcp,udp`), any case.
    static func transport(_ text: String) throws(ValueProblem) -> Config.Transport {
        let words = text.lowercased().split(separator: ",", omittingEmptySubsequences: false)
            .map { String(ConfigParser.trimmed($0)) }
        if words.count == 2, Set(words) == ["udp", "tcp"] { return .auto }
        guard words.count == 1, let transport = Config.Transport(rawValue: words[0]) else {
            throw ValueProblem("\"\(text)\" is not udp, tcp or auto (auto: both, the same as udp,tcp)")
        }
        return transport
    }

    /// A Linux interface name: 1 to 15 of letters, digits, "_", "." and "-", not "." or "..".
    static func interfaceName(_ text: String) throws(ValueProblem) -> String {
        let utf8 = Array(text.utf8)
        guard utf8.count <= Config.maximumNameLength else {
            throw ValueProblem("\"\(text)\" is too long (\(utf8.count) characters; Linux allows \(Config.maximumNameLength))")
        }
        let allowed = utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
        }
        guard allowed, text != ".", text != ".." else {
            throw ValueProblem("\"\(text)\" is not an interface name (letters, digits, \"_\", \".\" and \"-\")")
        }
        return text
    }

    /// A user name or numeric id: letters, digits, "_", "." and "-", at most 32 characters.
    static func userName(_ text: String) throws(ValueProblem) -> String {
        let utf8 = Array(text.utf8)
        let allowed = utf8.allSatisfy { c in
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "-")
        }
        guard allowed, utf8.count <= 32, utf8.first != UInt8(ascii: "-") else {
            throw ValueProblem("\"\(text)\" is not a user name")
        }
        return text
    }

    /// Seconds 0...65535 or `off`; nil means off.
    static func keepalive(_ text: String) throws(ValueProblem) -> UInt16? {
        if text.lowercased() == "off" { return nil }
        guard let value = decimal(text), value <= 65535 else {
            throw ValueProblem("\"\(text)\" is not a number of seconds (0-65535) or \"off\"")
        }
        return value == 0 ? nil : UInt16(value)
    }

    /// An address with an optional prefix length, host bits kept; bare means /32 or /128.
    static func prefix(_ text: String) throws(ValueProblem) -> IPPrefix {
        if let prefix = IPPrefix(text) { return prefix }
        let quoted = "\"\(text)\""
        if text.utf8.contains(UInt8(ascii: "%")) {
            throw ValueProblem("\(quoted) has an IPv6 zone (%...), which is not allowed here")
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else {
            throw ValueProblem("\(quoted) does not start with a valid IPv4 or IPv6 address")
        }
        let family = address.isIPv4 ? "IPv4" : "IPv6"
        throw ValueProblem("\(quoted) has a bad prefix length (0-\(address.bitWidth) for \(family))")
    }

    /// A private or pre-shared key in base64, as `wg genkey` prints it; the message never shows it.
    static func secretKey(_ text: String) throws(ValueProblem) -> SecretKey {
        do throws(CryptoError) {
            return try KeyEncoding.decodeSecretKey(text)
        } catch {
            throw ValueProblem("the value (not shown) \(notAKey)")
        }
    }

    /// A public key in base64, as `wg pubkey` prints it.
    static func publicKey(_ text: String) throws(ValueProblem) -> Bytes32 {
        do throws(CryptoError) {
            return try KeyEncoding.decodePublicKey(text)
        } catch {
            throw ValueProblem("\"\(text)\" \(notAKey)")
        }
    }

    static let notAKey = "is not a base64 key of 32 bytes (44 characters, as `wg genkey` prints)"
}
