// SPDX-License-Identifier: MIT
import Glibc

/// An IPv4 or IPv6 address with a prefix length, as netlink takes it: "10.8.0.1/24", "fd77::1/64".
///
/// Used for interface addresses (the host bits matter) and route destinations (host bits cleared by
/// ``Netlink/addRoute(to:device:metric:table:routeProtocol:)``). Not for the data path.
public struct NetlinkPrefix: Hashable, Sendable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 bytes (IPv6), network order.
    public let bytes: [UInt8]
    /// The prefix length: 0...32 or 0...128.
    public let length: Int

    /// A prefix from address bytes (4 or 16) and a length; nil when either is out of range.
    public init?(bytes: [UInt8], length: Int) {
        guard bytes.count == 4 || bytes.count == 16, length >= 0, length <= bytes.count * 8 else { return nil }
        self.bytes = bytes
        self.length = length
    }

    /// Parses "a.b.c.d/n" or "v6/n"; a bare address means a host (/32 or /128). Nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let addressText = String(parts[0])
        var bytes: [UInt8]
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, addressText, &buffer) == 1 {
            bytes = Array(buffer[0..<4])
        } else if inet_pton(AF_INET6, addressText, &buffer) == 1 {
            bytes = buffer
        } else {
            return nil
        }
        var length = bytes.count * 8
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), String(parsed) == parts[1] else { return nil }
            length = parsed
        }
        self.init(bytes: bytes, length: length)
    }

    /// True for IPv4.
    public var isIPv4: Bool { bytes.count == 4 }

    /// `AF_INET` or `AF_INET6`.
    public var family: UInt8 { UInt8(isIPv4 ? AF_INET : AF_INET6) }

    /// The same prefix with the host bits cleared ("10.8.0.1/24" → "10.8.0.0/24").
    public var network: NetlinkPrefix {
        var masked = bytes
        for i in 0..<masked.count {
            let bitsHere = max(0, min(8, length - i * 8))
            masked[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
        }
        return NetlinkPrefix(bytes: masked, length: length)!
    }

    /// "10.8.0.1/24" or "fd77::1/64".
    public var description: String {
        var text = [CChar](repeating: 0, count: 64)
        let family = isIPv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(address)/\(length)"
    }
}
