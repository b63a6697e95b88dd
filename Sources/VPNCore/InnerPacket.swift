// SPDX-License-Identifier: MIT
import VPNBasics

/// Reading the IP header of a decrypted tunnel packet (tun mode), without allocating.
///
/// Used after ``TransportData/open(_:key:replay:)`` to drop the padding (the real length is in the
/// IP header) and to reject malformed packets (`malformedInnerPacket`), and by cryptokey routing to
/// find the source and destination addresses.
public enum InnerPacket {
    /// Size of an IPv4 header without options.
    public static let ipv4MinimumHeaderSize = 20
    /// Size of the fixed IPv6 header.
    public static let ipv6HeaderSize = 40

    /// The IP version from the first nibble (4 or 6), or nil for an empty buffer or another version.
    @inlinable
    public static func version(of packet: UnsafeRawBufferPointer) -> Int? {
        guard packet.count >= 1 else { return nil }
        switch packet[0] >> 4 {
        case 4: return 4
        case 6: return 6
        default: return nil
        }
    }

    /// The packet's real length according to its IP header, so the caller can trim padding.
    ///
    /// IPv4: the total length field, which must cover the header (IHL ≥ 5). IPv6: the payload
    /// length plus 40.
    ///
    /// - Returns: the length, or nil when the version is not 4 or 6, the buffer is shorter than
    ///   the header, or the length field is shorter than the header or longer than the buffer.
    @inlinable
    public static func length(of packet: UnsafeRawBufferPointer) -> Int? {
        switch version(of: packet) {
        case 4:
            guard packet.count >= ipv4MinimumHeaderSize else { return nil }
            let headerLength = Int(packet[0] & 0x0F) * 4
            let total = Int(packet.loadBE16(at: 2))
            guard headerLength >= ipv4MinimumHeaderSize, total >= headerLength, total <= packet.count else { return nil }
            return total
        case 6:
            guard packet.count >= ipv6HeaderSize else { return nil }
            let total = ipv6HeaderSize + Int(packet.loadBE16(at: 4))
            guard total <= packet.count else { return nil }
            return total
        default:
            return nil
        }
    }

    /// The source address, keeping the family: an IPv6 packet gives `.v6` even for an IPv4-mapped
    /// address, so cryptokey routing looks it up among IPv6 prefixes as WireGuard does. Nil when the
    /// buffer does not hold an IPv4 or IPv6 header.
    @inlinable
    public static func source(of packet: UnsafeRawBufferPointer) -> IPAddress? {
        ipAddress(of: packet, ipv4Offset: 12, ipv6Offset: 8)
    }

    /// The destination address, keeping the family (see ``source(of:)``); nil when the buffer does
    /// not hold an IPv4 or IPv6 header.
    @inlinable
    public static func destination(of packet: UnsafeRawBufferPointer) -> IPAddress? {
        ipAddress(of: packet, ipv4Offset: 16, ipv6Offset: 24)
    }

    @inlinable
    static func ipAddress(of packet: UnsafeRawBufferPointer, ipv4Offset: Int, ipv6Offset: Int) -> IPAddress? {
        switch version(of: packet) {
        case 4:
            guard packet.count >= ipv4MinimumHeaderSize else { return nil }
            return .v4(packet.loadBE32(at: ipv4Offset))
        case 6:
            guard packet.count >= ipv6HeaderSize else { return nil }
            let high = UInt64(bigEndian: packet.baseAddress!.loadUnaligned(fromByteOffset: ipv6Offset, as: UInt64.self))
            let low = UInt64(bigEndian: packet.baseAddress!.loadUnaligned(fromByteOffset: ipv6Offset + 8, as: UInt64.self))
            return .v6(high, low)
        default:
            return nil
        }
    }

    /// The source address as 16 bytes in network order, IPv4-mapped for IPv4 (the layout of
    /// `Endpoint.address`); nil when the buffer does not hold an IPv4 or IPv6 header.
    @inlinable
    public static func sourceAddress(of packet: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        address(of: packet, ipv4Offset: 12, ipv6Offset: 8)
    }

    /// The destination address as 16 bytes in network order, IPv4-mapped for IPv4 (the layout of
    /// `Endpoint.address`); nil when the buffer does not hold an IPv4 or IPv6 header.
    @inlinable
    public static func destinationAddress(of packet: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        address(of: packet, ipv4Offset: 16, ipv6Offset: 24)
    }

    @inlinable
    static func address(of packet: UnsafeRawBufferPointer, ipv4Offset: Int, ipv6Offset: Int) -> (UInt64, UInt64)? {
        var result: (UInt64, UInt64) = (0, 0)
        switch version(of: packet) {
        case 4:
            guard packet.count >= ipv4MinimumHeaderSize else { return nil }
            withUnsafeMutableBytes(of: &result) { out in
                out[10] = 0xFF
                out[11] = 0xFF
                out.baseAddress!.advanced(by: 12).copyMemory(from: packet.baseAddress! + ipv4Offset, byteCount: 4)
            }
        case 6:
            guard packet.count >= ipv6HeaderSize else { return nil }
            withUnsafeMutableBytes(of: &result) { out in
                out.baseAddress!.copyMemory(from: packet.baseAddress! + ipv6Offset, byteCount: 16)
            }
        default:
            return nil
        }
        return result
    }
}
