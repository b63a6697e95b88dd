// SPDX-License-Identifier: MIT

/// Turning an inner packet that is too big for the tunnel into the ICMP error that tells its
/// sender so (path MTU discovery: RFC 1191 for IPv4, RFC 8201 for IPv6), to be written back to
/// the tun.
///
/// Works in place, allocates nothing, and reads and writes only inside the buffer whatever it
/// holds.
public enum ICMPTooBig {
    /// IPv4 header (20) plus ICMP header (8) of the error.
    @usableFromInline static let ipv4ErrorHeadersSize = 28
    /// IPv6 header (40) plus ICMPv6 header (8) of the error.
    @usableFromInline static let ipv6ErrorHeadersSize = 48
    /// The most an IPv4 ICMP error may take (RFC 1812 §4.3.2.3).
    @usableFromInline static let ipv4ErrorMaximumSize = 576
    /// The IPv6 minimum MTU, also the most an ICMPv6 error may take (RFC 4443 §2.4 (c)).
    @usableFromInline static let ipv6MinimumMTU = 1280
    /// The IPv4 minimum MTU (RFC 791).
    @usableFromInline static let ipv4MinimumMTU = 68

    /// Replaces the inner packet in `packet` (an IP packet of `packet.count` bytes at offset 0, tun mode) with the ICMP error telling its sender that packets to its destination must be at most `mtu` bytes: IPv4 "destination unreachable, fragmentation needed" (type 3 code 4, next-hop MTU in bytes 6-7, RFC 1191) for an IPv4 packet with DF set; IPv6 "packet too big" (type 2 code 0, 32-bit MTU, RFC 4443) for IPv6. Returns the new packet length, or nil when no such error is due (IPv4 without DF, an ICMP error itself (IPv4 ICMP types 3,4,5,11,12 or IPv6 ICMPv6 types < 128 — never answer an error with an error), a fragment other than the first, a source address that is unspecified/multicast/broadcast/loopback, a malformed header, or an IPv6 mtu below 1280: return nil then).
    ///
    /// - Parameters:
    ///   - packet: the buffer; its `count` is the capacity the error may use (at least `count`).
    ///   - count: the length of the inner packet at the start of `packet`. The IP header's length
    ///     field must lie within it; bytes past that length (padding) are not quoted.
    ///   - mtu: the path MTU to announce: 68...65535 for IPv4, 1280...2³²-1 for IPv6 (else nil).
    ///
    /// The error's source is the packet's destination and its destination the packet's source
    /// (Linux drops a packet from the tun whose source is one of its own addresses as martian).
    /// It quotes as much of the packet as fits in 576 bytes (IPv4) or 1280 bytes (IPv6) and in
    /// the capacity. Also nil: a destination that is unspecified, multicast or (IPv4) broadcast,
    /// since it would become the error's source; a capacity too small for the error's headers;
    /// `count` beyond the capacity. The IPv4 header checksum of the packet is not checked. For
    /// IPv6, hop-by-hop, routing, destination options, fragment and AH headers are skipped to
    /// find a fragment offset or an ICMPv6 type; a chain that runs past the packet is malformed.
    public static func write(into packet: UnsafeMutableRawBufferPointer, count: Int, mtu: Int) -> Int? {
        guard let base = packet.baseAddress, count >= 1, count <= packet.count else { return nil }
        switch base.load(as: UInt8.self) >> 4 {
        case 4: return writeIPv4(base, count: count, capacity: packet.count, mtu: mtu)
        case 6: return writeIPv6(base, count: count, capacity: packet.count, mtu: mtu)
        default: return nil
        }
    }

    // MARK: - IPv4

    @inlinable
    static func writeIPv4(_ base: UnsafeMutableRawPointer, count: Int, capacity: Int, mtu: Int) -> Int? {
        let bytes = UnsafeRawPointer(base)
        guard count >= InnerPacket.ipv4MinimumHeaderSize, capacity >= ipv4ErrorHeadersSize,
            mtu >= ipv4MinimumMTU, mtu <= 0xFFFF
        else { return nil }
        let headerLength = Int(bytes.load(as: UInt8.self) & 0x0F) * 4
        let total = Int(bytes.loadBE16(at: 2))
        guard headerLength >= InnerPacket.ipv4MinimumHeaderSize, total >= headerLength, total <= count else { return nil }
        let fragment = bytes.loadBE16(at: 6)
        guard fragment & 0x4000 != 0,  // DF
            fragment & 0x1FFF == 0  // the first fragment or none
        else { return nil }
        if bytes.load(fromByteOffset: 9, as: UInt8.self) == 1 {
            // ICMP: never answer an error. Without its type byte the packet is malformed.
            guard total > headerLength else { return nil }
            switch bytes.load(fromByteOffset: headerLength, as: UInt8.self) {
            case 3, 4, 5, 11, 12: return nil
            default: break
            }
        }
        let source = bytes.loadBE32(at: 12)
        let destination = bytes.loadBE32(at: 16)
        guard ipv4CanAnswer(source), ipv4CanAnswer(destination) else { return nil }

        let quote = min(total, ipv4ErrorMaximumSize - ipv4ErrorHeadersSize, capacity - ipv4ErrorHeadersSize)
        moveForward(base, count: quote, by: ipv4ErrorHeadersSize)
        let length = ipv4ErrorHeadersSize + quote

        // IPv4 header (RFC 791): no options, TOS 0xC0 (internetwork control, as Linux's errors).
        base.storeBE32(0x45C0_0000 | UInt32(length), at: 0)
        base.storeBE32(0, at: 4)  // id 0, no flags, offset 0
        base.storeBE32(0x4001_0000, at: 8)  // TTL 64, protocol 1, checksum 0 for now
        base.storeBE32(destination, at: 12)
        base.storeBE32(source, at: 16)
        let headerChecksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes, count: InnerPacket.ipv4MinimumHeaderSize))
        base.storeBE16(headerChecksum, at: 10)

        // ICMP destination unreachable, fragmentation needed and DF set (RFC 792, RFC 1191).
        let icmp = InnerPacket.ipv4MinimumHeaderSize
        base.storeBE32(0x0304_0000, at: icmp)
        base.storeBE32(UInt32(mtu), at: icmp + 4)  // unused (16 bits), next-hop MTU
        let icmpChecksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes + icmp, count: length - icmp))
        base.storeBE16(icmpChecksum, at: icmp + 2)
        return length
    }

    /// Whether an IPv4 address may be a source or destination of an error: not in 0/8
    /// (unspecified, "this network"), 127/8 (loopback), 224/4 (multicast), nor 255.255.255.255.
    @inlinable
    static func ipv4CanAnswer(_ address: UInt32) -> Bool {
        let first = address >> 24
        return first != 0 && first != 127 && address & 0xF000_0000 != 0xE000_0000 && address != 0xFFFF_FFFF
    }

    // MARK: - IPv6

    @inlinable
    static func writeIPv6(_ base: UnsafeMutableRawPointer, count: Int, capacity: Int, mtu: Int) -> Int? {
        let bytes = UnsafeRawPointer(base)
        let header = InnerPacket.ipv6HeaderSize
        guard count >= header, capacity >= ipv6ErrorHeadersSize, mtu >= ipv6MinimumMTU, mtu <= 0xFFFF_FFFF
        else { return nil }
        let total = header + Int(bytes.loadBE16(at: 4))
        guard total <= count else { return nil }
        let sourceHigh = bytes.loadBE64(at: 8)
        let sourceLow = bytes.loadBE64(at: 16)
        let destinationHigh = bytes.loadBE64(at: 24)
        let destinationLow = bytes.loadBE64(at: 32)
        guard ipv6CanAnswer(sourceHigh, sourceLow), ipv6CanAnswer(destinationHigh, destinationLow) else { return nil }
        guard ipv6IsEligible(bytes, total: total) else { return nil }

        let quote = min(total, ipv6MinimumMTU - ipv6ErrorHeadersSize, capacity - ipv6ErrorHeadersSize)
        moveForward(base, count: quote, by: ipv6ErrorHeadersSize)
        let length = ipv6ErrorHeadersSize + quote
        let icmpLength = length - header

        // IPv6 header (RFC 8200): traffic class 0, flow label 0, next header 58, hop limit 64.
        base.storeBE32(0x6000_0000, at: 0)
        base.storeBE32(UInt32(icmpLength) << 16 | 58 << 8 | 64, at: 4)
        base.storeBE64(destinationHigh, at: 8)
        base.storeBE64(destinationLow, at: 16)
        base.storeBE64(sourceHigh, at: 24)
        base.storeBE64(sourceLow, at: 32)

        // ICMPv6 packet too big (RFC 4443 §3.2), checksummed with the pseudo-header (§2.3).
        base.storeBE32(0x0200_0000, at: header)
        base.storeBE32(UInt32(mtu), at: header + 4)
        let pseudo = InternetChecksum.pseudoHeaderSum(addresses: bytes + 8, addressSize: 16, protocol: 58, length: icmpLength)
        let checksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes + header, count: icmpLength, initial: pseudo))
        base.storeBE16(checksum, at: header + 2)
        return length
    }

    /// Whether an IPv6 address may be a source or destination of an error: not :: (unspecified),
    /// ::1 (loopback) nor in ff00::/8 (multicast).
    @inlinable
    static func ipv6CanAnswer(_ high: UInt64, _ low: UInt64) -> Bool {
        !(high == 0 && (low == 0 || low == 1)) && high >> 56 != 0xFF
    }

    /// Whether a too-big error may answer the IPv6 packet of `total` bytes: its extension headers
    /// lie inside it, it is not a fragment other than the first, and it is not an ICMPv6 error
    /// (type below 128). Another upper layer (or no next header) ends the walk.
    @inlinable
    static func ipv6IsEligible(_ bytes: UnsafeRawPointer, total: Int) -> Bool {
        var next = bytes.load(fromByteOffset: 6, as: UInt8.self)
        var offset = InnerPacket.ipv6HeaderSize
        while true {
            switch next {
            case 0, 43, 60:  // hop-by-hop options, routing, destination options: (8 + 8 × len) bytes
                guard total - offset >= 8 else { return false }
                next = bytes.load(fromByteOffset: offset, as: UInt8.self)
                offset += 8 + 8 * Int(bytes.load(fromByteOffset: offset + 1, as: UInt8.self))
            case 44:  // fragment: 8 bytes, the offset in the top 13 bits of bytes 2-3
                guard total - offset >= 8 else { return false }
                guard bytes.loadBE16(at: offset + 2) & 0xFFF8 == 0 else { return false }
                next = bytes.load(fromByteOffset: offset, as: UInt8.self)
                offset += 8
            case 51:  // authentication header: (8 + 4 × len) bytes
                guard total - offset >= 8 else { return false }
                next = bytes.load(fromByteOffset: offset, as: UInt8.self)
                offset += 8 + 4 * Int(bytes.load(fromByteOffset: offset + 1, as: UInt8.self))
            case 58:
                guard total - offset >= 1 else { return false }
                return bytes.load(fromByteOffset: offset, as: UInt8.self) >= 128
            default:
                return true
            }
            guard offset <= total else { return false }
        }
    }

    // MARK: - Moving the packet

    /// Moves the `count` bytes at `base` forward by `shift` bytes (overlapping regions), as a
    /// series of non-overlapping copies of at most `shift` bytes, the last block first: each block
    /// is read before any copy can reach it.
    @inlinable
    static func moveForward(_ base: UnsafeMutableRawPointer, count: Int, by shift: Int) {
        var end = count
        while end > 0 {
            let start = max(0, end - shift)
            (base + start + shift).copyMemory(from: UnsafeRawPointer(base + start), byteCount: end - start)
            end = start
        }
    }
}

extension UnsafeRawPointer {
    /// The big-endian (network order) `UInt64` at `offset`, read unaligned.
    @inlinable
    func loadBE64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

extension UnsafeMutableRawPointer {
    /// Writes `value` big-endian (network order) at `offset`, unaligned.
    @inlinable
    func storeBE64(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self)
    }
}
