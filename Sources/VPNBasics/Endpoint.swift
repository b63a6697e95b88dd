// SPDX-License-Identifier: MIT

/// What carries messages to an endpoint: a UDP socket, or a TCP connection.
public enum Carrier: UInt8, Hashable, Sendable, CustomStringConvertible {
    case udp = 0
    case tcp = 1

    public var description: String { self == .udp ? "udp" : "tcp" }
}

/// A UDP or TCP endpoint: an IPv4 or IPv6 address and a port, held inline (no allocation).
///
/// IPv4 addresses are stored as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), so one 16-byte form
/// serves both families and comparisons are plain.
///
/// ``carrier`` tells a UDP address from a TCP connection with the same address and port: a
/// transport that speaks both (`Transport = auto`) tags what it receives, and sends by the tag.
/// A single-carrier transport leaves it at ``Carrier/udp`` whatever it carries.
public struct Endpoint: Hashable, Sendable {
    /// The address as 16 bytes in network order (IPv4-mapped for IPv4).
    public var address: (UInt64, UInt64)
    /// The port in host order.
    public var port: UInt16
    /// The carrier, where a transport speaks both (laid out in the padding after `port`).
    public var carrier: Carrier = .udp
    /// The IPv6 scope (interface index) for link-local addresses; 0 otherwise.
    public var scopeID: UInt32

    /// The unspecified endpoint `[::]:0`, used for "no endpoint yet".
    public static let none = Endpoint(address: (0, 0), port: 0, scopeID: 0)

    public init(address: (UInt64, UInt64), port: UInt16, scopeID: UInt32 = 0) {
        self.address = address
        self.port = port
        self.scopeID = scopeID
    }

    /// An IPv4 endpoint from four octets.
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8, port: UInt16) {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[10] = 0xFF
        bytes[11] = 0xFF
        bytes[12] = a
        bytes[13] = b
        bytes[14] = c
        bytes[15] = d
        self.init(addressBytes: bytes, port: port)
    }

    /// An endpoint from 16 address bytes in network order (IPv4-mapped for IPv4).
    public init(addressBytes bytes: [UInt8], port: UInt16, scopeID: UInt32 = 0) {
        precondition(bytes.count == 16, "an Endpoint address has 16 bytes")
        var storage: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        self.init(address: storage, port: port, scopeID: scopeID)
    }

    /// The 16 address bytes in network order.
    public var addressBytes: [UInt8] { withUnsafeBytes(of: address) { Array($0) } }

    /// True for an IPv4-mapped address.
    public var isIPv4: Bool {
        withUnsafeBytes(of: address) { b in
            b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF
        }
    }

    public static func == (lhs: Endpoint, rhs: Endpoint) -> Bool {
        lhs.address == rhs.address && lhs.port == rhs.port && lhs.scopeID == rhs.scopeID && lhs.carrier == rhs.carrier
    }

    /// The same address and port, whatever the carrier.
    public func sameAddress(as other: Endpoint) -> Bool {
        address == other.address && port == other.port && scopeID == other.scopeID
    }

    /// This endpoint over `carrier`.
    public func over(_ carrier: Carrier) -> Endpoint {
        var endpoint = self
        endpoint.carrier = carrier
        return endpoint
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(address.0)
        hasher.combine(address.1)
        hasher.combine(port)
        hasher.combine(scopeID)
        hasher.combine(carrier)
    }
}

extension Endpoint: CustomStringConvertible {
    /// `a.b.c.d:port` or `[v6]:port`.
    public var description: String {
        let b = addressBytes
        if isIPv4 { return "\(b[12]).\(b[13]).\(b[14]).\(b[15]):\(port)" }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) {
            groups.append(String(UInt16(b[i]) << 8 | UInt16(b[i + 1]), radix: 16))
        }
        // Compress the longest run of zero groups (RFC 5952).
        var bestStart = -1, bestLength = 0, runStart = -1
        for i in 0...8 {
            if i < 8 && groups[i] == "0" {
                if runStart < 0 { runStart = i }
            } else if runStart >= 0 {
                if i - runStart > bestLength && i - runStart > 1 { bestStart = runStart; bestLength = i - runStart }
                runStart = -1
            }
        }
        var text: String
        if bestStart >= 0 {
            let head = groups[0..<bestStart].joined(separator: ":")
            let tail = groups[(bestStart + bestLength)...].joined(separator: ":")
            text = head + "::" + tail
        } else {
            text = groups.joined(separator: ":")
        }
        if scopeID != 0 { text += "%\(scopeID)" }
        return "[\(text)]:\(port)"
    }
}
