// SPDX-License-Identifier: MIT

/// Clamping the maximum segment size that TCP peers announce in their SYN and SYN-ACK, so that
/// connections through the tunnel pick segments that fit its MTU even when ICMP "too big" errors
/// are filtered on the way (what `iptables … -j TCPMSS --set-mss` does).
///
/// Works in place on one packet, allocates nothing, and reads and writes only inside the buffer
/// whatever it holds: every length in the packet is checked before it is used.
public enum MSSClamp {
    /// TCP option kinds (RFC 9293 §3.2).
    @usableFromInline static let optionEnd: UInt8 = 0
    @usableFromInline static let optionNOP: UInt8 = 1
    @usableFromInline static let optionMSS: UInt8 = 2
    /// Size of a TCP header without options.
    @usableFromInline static let tcpMinimumHeaderSize = 20

    /// Lowers the MSS option of a TCP SYN or SYN-ACK to `maximumSegmentSize` if it is larger, fixing the
    /// TCP checksum incrementally (RFC 1624, eqn. 3). Returns true when the packet was changed.
    ///
    /// - Parameters:
    ///   - packet: the packet, starting with `linkHeaderLength` bytes of link header.
    ///   - linkHeaderLength: 0 (tun mode: the IP header at offset 0) or 14 (tap mode: an Ethernet
    ///     header, possibly followed by one 802.1Q or 802.1ad tag). Any other value: false.
    ///   - maximumSegmentSize4: the largest MSS left in an IPv4 segment (clamped to 0...65535).
    ///   - maximumSegmentSize6: the largest MSS left in an IPv6 segment (clamped to 0...65535).
    ///
    /// A segment that is not a SYN, is an IPv4 fragment, has an IPv6 extension header, has
    /// malformed lengths or a malformed option list, or has no MSS option is left untouched
    /// (no MSS option is ever added). Every MSS option above the maximum is lowered (a list with
    /// several is malformed, but each receiver picks its own, so none is left above the maximum).
    public static func clamp(
        _ packet: UnsafeMutableRawBufferPointer, linkHeaderLength: Int, maximumSegmentSize4: Int, maximumSegmentSize6: Int
    ) -> Bool {
        guard let segment = tcpSegment(UnsafeRawBufferPointer(packet), linkHeaderLength: linkHeaderLength),
            packet[segment.tcp + 13] & TCPFlags.syn != 0
        else { return false }
        let maximum = UInt16(clamping: segment.v6 ? maximumSegmentSize6 : maximumSegmentSize4)
        let base = packet.baseAddress!
        let optionsEnd = segment.tcp + segment.tcpHeaderLength
        // First pass: the whole option list must be well formed before anything is written.
        guard walkOptions(UnsafeRawPointer(base), from: segment.tcp + tcpMinimumHeaderSize, to: optionsEnd, visit: { _ in })
        else { return false }
        var changed = false
        var checksum = UnsafeRawPointer(base).loadBE16(at: segment.tcp + 16)
        _ = walkOptions(UnsafeRawPointer(base), from: segment.tcp + tcpMinimumHeaderSize, to: optionsEnd) { value in
            let current = UnsafeRawPointer(base).loadBE16(at: value)
            guard current > maximum else { return }
            checksum = replace16(base, at: value, with: maximum, tcpStart: segment.tcp, optionsEnd: optionsEnd, checksum: checksum)
            changed = true
        }
        if changed { base.storeBE16(checksum, at: segment.tcp + 16) }
        return changed
    }

    /// Cheap pre-check used on every packet: true only for an IPv4/IPv6 TCP segment with SYN set (so the caller can skip the rest).
    ///
    /// Applies the same header checks as ``clamp(_:linkHeaderLength:maximumSegmentSize4:maximumSegmentSize6:)``
    /// except the option list.
    @inline(__always)
    public static func isTCPSYN(_ packet: UnsafeRawBufferPointer, linkHeaderLength: Int) -> Bool {
        guard let segment = tcpSegment(packet, linkHeaderLength: linkHeaderLength) else { return false }
        return packet[segment.tcp + 13] & TCPFlags.syn != 0
    }

    /// Where the TCP header of a packet is: its offset, its length (data offset × 4, at least 20
    /// and inside the segment) and the IP version; nil for anything but an unfragmented IPv4 or
    /// IPv6 (no extension header) TCP segment whose lengths fit the buffer.
    @inlinable
    static func tcpSegment(
        _ packet: UnsafeRawBufferPointer, linkHeaderLength: Int
    ) -> (tcp: Int, tcpHeaderLength: Int, v6: Bool)? {
        guard let base = packet.baseAddress else { return nil }
        let count = packet.count
        var ip: Int
        var etherType: UInt16 = 0
        switch linkHeaderLength {
        case 0:
            ip = 0
        case EthernetHeader.size:
            guard count >= EthernetHeader.size else { return nil }
            ip = EthernetHeader.size
            etherType = base.loadBE16(at: 12)
            if etherType == EthernetHeader.typeVLAN || etherType == EthernetHeader.typeQinQ {
                guard count >= EthernetHeader.size + 4 else { return nil }
                etherType = base.loadBE16(at: 16)
                ip += 4
            }
            guard etherType == EthernetHeader.typeIPv4 || etherType == EthernetHeader.typeIPv6 else { return nil }
        default:
            return nil
        }
        guard count - ip >= InnerPacket.ipv4MinimumHeaderSize else { return nil }
        let version = base.load(fromByteOffset: ip, as: UInt8.self) >> 4
        let tcp: Int
        let end: Int
        switch version {
        case 4:
            guard linkHeaderLength == 0 || etherType == EthernetHeader.typeIPv4 else { return nil }
            let headerLength = Int(base.load(fromByteOffset: ip, as: UInt8.self) & 0x0F) * 4
            let total = Int(base.loadBE16(at: ip + 2))
            guard headerLength >= InnerPacket.ipv4MinimumHeaderSize, total >= headerLength, total <= count - ip,
                base.load(fromByteOffset: ip + 9, as: UInt8.self) == 6,
                base.loadBE16(at: ip + 6) & 0x3FFF == 0  // MF clear, fragment offset 0
            else { return nil }
            tcp = ip + headerLength
            end = ip + total
        case 6:
            guard linkHeaderLength == 0 || etherType == EthernetHeader.typeIPv6,
                count - ip >= InnerPacket.ipv6HeaderSize,
                base.load(fromByteOffset: ip + 6, as: UInt8.self) == 6
            else { return nil }
            let payload = Int(base.loadBE16(at: ip + 4))
            guard payload <= count - ip - InnerPacket.ipv6HeaderSize else { return nil }
            tcp = ip + InnerPacket.ipv6HeaderSize
            end = tcp + payload
        default:
            return nil
        }
        guard end - tcp >= tcpMinimumHeaderSize else { return nil }
        let headerLength = Int(base.load(fromByteOffset: tcp + 12, as: UInt8.self) >> 4) * 4
        guard headerLength >= tcpMinimumHeaderSize, headerLength <= end - tcp else { return nil }
        return (tcp, headerLength, version == 6)
    }

    /// Walks the TCP options in `start..<end` and calls `visit` with the offset of the value of
    /// each MSS option. False when the list is malformed: an option other than end and NOP whose
    /// length byte is missing, below 2 or runs past `end`, or an MSS option not 4 bytes long.
    @inlinable
    static func walkOptions(_ base: UnsafeRawPointer, from start: Int, to end: Int, visit: (Int) -> Void) -> Bool {
        var offset = start
        while offset < end {
            let kind = base.load(fromByteOffset: offset, as: UInt8.self)
            if kind == optionEnd { return true }
            if kind == optionNOP {
                offset += 1
                continue
            }
            guard end - offset >= 2 else { return false }
            let length = Int(base.load(fromByteOffset: offset + 1, as: UInt8.self))
            guard length >= 2, length <= end - offset else { return false }
            if kind == optionMSS {
                guard length == 4 else { return false }
                visit(offset + 2)
            }
            offset += length
        }
        return true
    }

    /// Writes `value` big-endian at `offset` and returns `checksum` updated for the change.
    ///
    /// The checksum sums 16-bit words aligned to the start of the TCP header (the pseudo-header
    /// has an even length). At an even distance from it the field is one such word; at an odd
    /// distance its two bytes are the low byte of one word and the high byte of the next, so both
    /// words are updated (both lie inside the option list: an odd field ends before the header's
    /// even end).
    @inlinable
    static func replace16(
        _ base: UnsafeMutableRawPointer, at offset: Int, with value: UInt16, tcpStart: Int, optionsEnd: Int,
        checksum: UInt16
    ) -> UInt16 {
        if (offset - tcpStart) & 1 == 0 {
            let old = UnsafeRawPointer(base).loadBE16(at: offset)
            base.storeBE16(value, at: offset)
            return updateChecksum(checksum, old: old, new: value)
        }
        let first = offset - 1
        let second = offset + 1
        precondition(first >= tcpStart && second + 2 <= optionsEnd)
        let oldFirst = UnsafeRawPointer(base).loadBE16(at: first)
        let oldSecond = UnsafeRawPointer(base).loadBE16(at: second)
        base.storeBE16(value, at: offset)
        let newFirst = UnsafeRawPointer(base).loadBE16(at: first)
        let newSecond = UnsafeRawPointer(base).loadBE16(at: second)
        return updateChecksum(updateChecksum(checksum, old: oldFirst, new: newFirst), old: oldSecond, new: newSecond)
    }

    /// RFC 1624 eqn. 3: the checksum `checksum` after one 16-bit word changes from `old` to
    /// `new`, HC' = ~(~HC + ~m + m') in one's complement arithmetic.
    @inlinable
    static func updateChecksum(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var sum = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        sum = (sum & 0xFFFF) &+ (sum &>> 16)
        sum = (sum & 0xFFFF) &+ (sum &>> 16)
        return ~UInt16(truncatingIfNeeded: sum)
    }
}
