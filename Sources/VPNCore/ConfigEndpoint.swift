// SPDX-License-Identifier: MIT
import VPNBasics

/// A peer's `Endpoint` as configured: a literal address, or a host name for the daemon to resolve.
///
/// The core does no DNS: `vpn.example.net:51820` stays a name here, and the daemon turns it into
/// an ``Endpoint`` at start-up.
public enum EndpointSpec: Hashable, Sendable, CustomStringConvertible {
    /// A literal `a.b.c.d:port` or `[v6]:port`.
    case address(Endpoint)
    /// A host name and a port, to be resolved.
    case hostName(String, port: UInt16)

    /// Parses `HOST:PORT`, `a.b.c.d:PORT` or `[IPv6]:PORT`; nil when it is none of these.
    public init?(_ text: some StringProtocol) {
        guard let spec = try? Self.parse(String(text)) else { return nil }
        self = spec
    }

    /// The port, 1...65535.
    public var port: UInt16 {
        switch self {
        case .address(let endpoint): return endpoint.port
        case .hostName(_, let port): return port
        }
    }

    /// The text form, parseable again: `1.2.3.4:51820`, `[fd00::1]:51820`, `vpn.example.net:51820`.
    public var description: String {
        switch self {
        case .address(let endpoint): return endpoint.description
        case .hostName(let name, let port): return "\(name):\(port)"
        }
    }

    /// Parses with a message saying what is wrong.
    static func parse(_ text: String) throws(ValueProblem) -> EndpointSpec {
        let quoted = "\"\(text)\""
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: "%")) {
            throw ValueProblem("\(quoted) has an IPv6 zone (%...), which vpnd does not support; use a global address")
        }
        let host: ArraySlice<UInt8>
        let portText: ArraySlice<UInt8>
        var bracketed = false
        if utf8.first == UInt8(ascii: "[") {
            guard let close = utf8.firstIndex(of: UInt8(ascii: "]")) else {
                throw ValueProblem("\(quoted) has \"[\" without \"]\" (write [IPv6]:PORT)")
            }
            guard close + 1 < utf8.count, utf8[close + 1] == UInt8(ascii: ":") else {
                throw ValueProblem("\(quoted) has no port (write [IPv6]:PORT)")
            }
            host = utf8[1..<close]
            portText = utf8[(close + 2)...]
            bracketed = true
        } else {
            guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")) else {
                throw ValueProblem("\(quoted) has no port (write HOST:PORT or [IPv6]:PORT)")
            }
            host = utf8[..<colon]
            portText = utf8[(colon + 1)...]
            if host.contains(UInt8(ascii: ":")) {
                throw ValueProblem("\(quoted) needs brackets around an IPv6 address, as in [fd00::1]:51820")
            }
        }
        let portString = String(decoding: portText, as: UTF8.self)
        guard !portString.isEmpty else { throw ValueProblem("\(quoted) has no port (write HOST:PORT or [IPv6]:PORT)") }
        guard let portValue = ConfigValues.decimal(portString), (1...65535).contains(portValue) else {
            throw ValueProblem("\(quoted) has port \"\(portString)\", which is not a port number (1-65535)")
        }
        let port = UInt16(portValue)
        if bracketed {
            guard let address = IPAddress(String(decoding: host, as: UTF8.self)), !address.isIPv4 else {
                throw ValueProblem("\(quoted) has no valid IPv6 address inside the brackets")
            }
            return .address(Endpoint(address, port: port))
        }
        guard !host.isEmpty else { throw ValueProblem("\(quoted) has no host before the port") }
        if host.allSatisfy({ $0 == UInt8(ascii: ".") || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }) {
            guard let address = IPAddress(String(decoding: host, as: UTF8.self)) else {
                throw ValueProblem("\(quoted) does not have a valid IPv4 address (four numbers 0-255, no leading zeros)")
            }
            return .address(Endpoint(address, port: port))
        }
        let name = String(decoding: host, as: UTF8.self)
        guard Self.isHostName(host) else {
            throw ValueProblem("\(quoted) does not have a valid host name or IP address")
        }
        return .hostName(name, port: port)
    }

    /// Dot-separated labels of letters, digits, "-" and "_" (1 to 63 each, no "-" at either
    /// end), 253 characters at most, an optional final dot.
    static func isHostName(_ host: ArraySlice<UInt8>) -> Bool {
        var host = host
        if host.last == UInt8(ascii: ".") { host = host.dropLast() }
        guard !host.isEmpty, host.count <= 253 else { return false }
        for label in host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count), label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-")
            else { return false }
            for c in label {
                switch c {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    continue
                default:
                    return false
                }
            }
        }
        return true
    }
}

extension ConfigValues {
    /// A local address to listen on: `a.b.c.d:PORT` or `[IPv6]:PORT` (`MetricsListen`); a host
    /// name is refused, since what it resolves to could change which interfaces are exposed.
    static func listenAddress(_ text: String) throws(ValueProblem) -> Endpoint {
        switch try EndpointSpec.parse(text) {
        case .address(let endpoint): return endpoint
        case .hostName:
            throw ValueProblem(
                "\"\(text)\" is a host name; write an address and a port, such as 127.0.0.1:9586 or [::1]:9586")
        }
    }
}
