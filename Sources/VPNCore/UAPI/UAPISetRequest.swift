// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

// The `set=1` operation of WireGuard's cross-platform configuration protocol
// (wireguard.com/xplatform, "Configuration Protocol"), parsed whole before anything changes: a
// transaction with one bad line applies nothing. Keys and values as the spec and wireguard-go's
// device/uapi.go take them; vpnd applies the parsed request in one step on the data-plane
// thread.

/// A refusal of a configuration request: the errno the protocol answers and one line for the log.
public struct UAPIError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The positive errno; the answer is `errno=-N`, as wireguard-go writes it.
    public let errno: Int32
    /// What was wrong, naming the line.
    public let message: String

    public static let invalid: Int32 = 22  // EINVAL
    public static let io: Int32 = 5  // EIO
    public static let protocolError: Int32 = 71  // EPROTO
    public static let portInUse: Int32 = 98  // EADDRINUSE
    public static let permission: Int32 = 1  // EPERM

    public init(errno: Int32, _ message: String) {
        self.errno = errno
        self.message = message
    }

    public var description: String { message }

    /// The answer's status line (without the blank line that ends the answer).
    public var statusLine: String { "errno=-\(errno)" }

    /// A kernel call that failed while applying a request: its errno (EIO when it has none) and
    /// `context: error`.
    public init(_ error: IOError, _ context: String) {
        self.init(errno: error.errno == 0 ? UAPIError.io : error.errno, "\(context): \(error)")
    }

    /// At most 40 characters of `text`, control characters escaped, quoted, for a log line.
    public static func printable(_ text: some StringProtocol) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(40) {
            if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\u{\(String(scalar.value, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
        }
        return "\"" + out + (text.unicodeScalars.count > 40 ? "…" : "") + "\""
    }
}

/// A key that a request sets, or clears (the spec's 64 zero hex digits).
public enum UAPIKeyChange: Sendable {
    case set(SecretKey)
    case clear
}

/// One AllowedIPs change of a peer, in request order.
public enum UAPIAllowedIPChange: Sendable, Equatable {
    case add(IPPrefix)
    /// `allowed_ip=-PREFIX` (wireguard-go's extension): remove this one.
    case remove(IPPrefix)
}

/// What one `public_key=` section of a `set=1` request asks for a peer.
public struct UAPIPeerChange: Sendable {
    public var publicKey: Bytes32
    /// `remove=true`: the peer goes (the lines after it in its section are ignored).
    public var remove = false
    /// `update_only=true`: change the peer only if it exists; never create it.
    public var updateOnly = false
    public var presharedKey: UAPIKeyChange?
    public var endpoint: Endpoint?
    /// `persistent_keepalive_interval` in seconds (0 turns it off).
    public var persistentKeepalive: UInt16?
    /// `replace_allowed_ips=true`: the peer's AllowedIPs start empty before ``allowedIPs`` apply.
    public var replaceAllowedIPs = false
    public var allowedIPs: [UAPIAllowedIPChange] = []

    public init(publicKey: Bytes32) { self.publicKey = publicKey }
}

/// A whole `set=1` request, parsed.
public struct UAPISetRequest: Sendable {
    public var privateKey: UAPIKeyChange?
    public var listenPort: UInt16?
    /// `fwmark` (0 clears it).
    public var fwmark: UInt32?
    /// `replace_peers=true`: every peer not named in this request goes.
    public var replacePeers = false
    /// The peer sections, in request order (a key named twice gives two sections).
    public var peers: [UAPIPeerChange] = []
    /// The tunnel MTU: vpnd's reload sets it; the UAPI text has no such key (wg-quick sets the
    /// MTU on the interface, which vpnd-wg does not follow).
    public var mtu: Int?

    public init() {}

    /// The most bytes one request may have (a `wg setconf` of 10,000 peers is about 3 MB).
    public static let maximumSize = 8 << 20
    /// The longest line: an `allowed_ip` or `endpoint` needs under 70 bytes.
    public static let maximumLineLength = 512

    /// Parses the lines of a `set=1` request: everything after the `set=1` line, up to the blank
    /// line that ends it (each line ends with a newline; the blank line is not part of `text`).
    public static func parse(_ text: String) throws(UAPIError) -> UAPISetRequest {
        guard text.utf8.count <= maximumSize else {
            throw UAPIError(errno: UAPIError.invalid, "set request of \(text.utf8.count) bytes exceeds \(maximumSize)")
        }
        var request = UAPISetRequest()
        var number = 0
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }  // the newline of the last line
        for line in lines {
            number += 1
            guard line.utf8.count <= maximumLineLength else {
                throw UAPIError(errno: UAPIError.invalid, "line \(number): longer than \(maximumLineLength) bytes")
            }
            guard !line.isEmpty else {
                throw UAPIError(errno: UAPIError.protocolError, "line \(number): an empty line inside the request")
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw UAPIError(errno: UAPIError.protocolError, "line \(number): not key=value: \(printable(line))")
            }
            let key = line[..<equals]
            let value = line[line.index(after: equals)...]
            if key == "public_key" {
                let publicKey = try parsePublicKey(value, line: number)
                request.peers.append(UAPIPeerChange(publicKey: publicKey))
                continue
            }
            if request.peers.isEmpty {
                try request.applyInterfaceLine(key, value, line: number)
            } else {
                try request.peers[request.peers.count - 1].applyLine(key, value, line: number)
            }
        }
        return request
    }

    private mutating func applyInterfaceLine(_ key: Substring, _ value: Substring, line: Int) throws(UAPIError) {
        switch key {
        case "private_key":
            privateKey = try parseKey(value, name: "private_key", line: line)
        case "listen_port":
            listenPort = try parseNumber(value, name: "listen_port", maximum: UInt64(UInt16.max), line: line).map(UInt16.init)
        case "fwmark":
            fwmark = try parseNumber(value, name: "fwmark", maximum: UInt64(UInt32.max), line: line).map(UInt32.init)
        case "replace_peers":
            try requireTrue(value, name: "replace_peers", line: line)
            replacePeers = true
        default:
            throw UAPIError(
                errno: UAPIError.invalid, "line \(line): \(printable(key)) is no interface key (or comes before public_key)")
        }
    }
}

extension UAPIPeerChange {
    fileprivate mutating func applyLine(_ key: Substring, _ value: Substring, line: Int) throws(UAPIError) {
        switch key {
        case "remove":
            try requireTrue(value, name: "remove", line: line)
            remove = true
        case "update_only":
            try requireTrue(value, name: "update_only", line: line)
            updateOnly = true
        case "preshared_key":
            presharedKey = try parseKey(value, name: "preshared_key", line: line)
        case "endpoint":
            guard let endpoint = Endpoint(value) else {
                throw UAPIError(
                    errno: UAPIError.invalid,
                    "line \(line): endpoint \(printable(value)) is not IPv4:port or [IPv6]:port")
            }
            self.endpoint = endpoint
        case "persistent_keepalive_interval":
            persistentKeepalive = try parseNumber(
                value, name: "persistent_keepalive_interval", maximum: UInt64(UInt16.max), line: line
            ).map(UInt16.init)
        case "replace_allowed_ips":
            try requireTrue(value, name: "replace_allowed_ips", line: line)
            replaceAllowedIPs = true
        case "allowed_ip":
            let removing = value.first == "-"
            let text = removing ? value.dropFirst() : value
            guard let parsed = IPPrefix(text) else {
                throw UAPIError(
                    errno: UAPIError.invalid, "line \(line): allowed_ip \(printable(value)) is not an address/length")
            }
            let prefix = parsed.masked  // host bits go, as in wireguard-go's table
            allowedIPs.append(removing ? .remove(prefix) : .add(prefix))
        case "protocol_version":
            guard value == "1" else {
                throw UAPIError(errno: UAPIError.invalid, "line \(line): protocol_version \(printable(value)) is not 1")
            }
        default:
            throw UAPIError(errno: UAPIError.invalid, "line \(line): \(printable(key)) is no peer key")
        }
    }
}

private func parsePublicKey(_ value: Substring, line: Int) throws(UAPIError) -> Bytes32 {
    guard value.utf8.count == 64, let bytes = Hex.decode(value), let key = Bytes32(bytes) else {
        throw UAPIError(errno: UAPIError.invalid, "line \(line): public_key is not 64 hex digits")
    }
    return key
}

private func parseKey(_ value: Substring, name: String, line: Int) throws(UAPIError) -> UAPIKeyChange {
    guard value.utf8.count == 64, let bytes = Hex.decode(value) else {
        // Never echo the value: it is a secret.
        throw UAPIError(errno: UAPIError.invalid, "line \(line): \(name) is not 64 hex digits")
    }
    if bytes.allSatisfy({ $0 == 0 }) { return .clear }
    return .set(bytes.withUnsafeBytes { SecretKey(copying: $0) })
}

private func parseNumber(_ value: Substring, name: String, maximum: UInt64, line: Int) throws(UAPIError) -> UInt64? {
    guard !value.isEmpty, value.utf8.count <= 20, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
        let number = UInt64(value), number <= maximum
    else {
        throw UAPIError(errno: UAPIError.invalid, "line \(line): \(name) \(printable(value)) is not a number 0-\(maximum)")
    }
    return number
}

private func requireTrue(_ value: Substring, name: String, line: Int) throws(UAPIError) {
    guard value == "true" else {
        throw UAPIError(errno: UAPIError.invalid, "line \(line): \(name) takes only true, not \(printable(value))")
    }
}

private func printable(_ text: Substring) -> String { UAPIError.printable(text) }
