// SPDX-License-Identifier: MIT
import VPNBasics

/// What ``GSOSplitter/split(_:header:into:)`` did with one tun read.
public enum SegmentResult: Equatable, Sendable {
    /// The first `count` buffers of the batch each received one packet, in order.
    case segments(Int)
    /// Nothing usable: the buffers are unchanged.
    case drop(DropReason)
}

/// Segmentation of tun super-packets (TSO/USO) into MTU-sized packets, done in user space.
///
/// tun devices hand over IP packets (`linkHeaderLength` 0); tap devices hand over Ethernet frames
/// (`linkHeaderLength` 14), where each segment becomes the frame's Ethernet header (802.1Q and
/// 802.1ad tags included) followed by one IP segment. Ethernet frames that are not IPv4/IPv6 can
/// only come as `GSO_NONE` and are copied as they are.
///
/// A tun opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD` returns up to 64 KiB of one TCP stream or
/// UDP socket per read, behind a ``VirtioNetHeader``. `split` copies the IP and L4 headers in front
/// of each `gsoSize` slice of the payload and makes every segment a valid packet on its own: IPv4
/// total length, identification (+1 per segment) and header checksum, IPv6 payload length, TCP
/// sequence number (+`gsoSize` per segment), TCP flags (FIN and PSH only on the last segment, CWR
/// only on the first), UDP length, and the full TCP/UDP checksum. A plain packet (`GSO_NONE`) is
/// copied, its checksum completed if the header says `NEEDS_CSUM`.
///
/// Pure and allocation-free; the input is never modified. Safe to call from any thread on
/// buffers that thread owns.
public enum GSOSplitter {
    /// Splits the packet behind a virtio-net header (a whole tun read) into `batch`.
    ///
    /// - Parameters:
    ///   - read: the ``VirtioNetHeader`` followed by the IP packet.
    ///   - batch: buffers to append one packet each to, in order.
    /// - Returns: ``SegmentResult/segments(_:)`` with the number of buffers filled, or a drop.
    ///   - linkHeaderLength: 0 for IP packets (tun), 14 for Ethernet frames (tap).
    @inlinable
    public static func split(
        virtioPacket read: UnsafeRawBufferPointer, linkHeaderLength: Int = 0,
        into batch: UnsafeMutableBufferPointer<PacketBuffer>
    ) -> SegmentResult {
        guard let header = VirtioNetHeader(parsing: read) else { return .drop(.malformedOffload) }
        return split(
            UnsafeRawBufferPointer(rebasing: read[VirtioNetHeader.size...]), header: header,
            linkHeaderLength: linkHeaderLength, into: batch)
    }

    /// Where the IP header starts in a frame: 0 for IP packets; for Ethernet frames 14, plus 4 for
    /// each 802.1Q/802.1ad tag (at most two). nil when an Ethernet frame is too short or does not
    /// carry IPv4/IPv6. `linkHeaderLength` must be 0 or 14.
    @inlinable
    public static func networkOffset(_ frame: UnsafeRawBufferPointer, linkHeaderLength: Int) -> Int? {
        precondition(linkHeaderLength == 0 || linkHeaderLength == EthernetHeader.size,
            "linkHeaderLength is 0 (IP packets) or 14 (Ethernet frames)")
        if linkHeaderLength == 0 { return 0 }
        guard let base = frame.baseAddress else { return nil }
        var offset = EthernetHeader.size
        for _ in 0..<3 {
            guard frame.count >= offset else { return nil }
            switch base.loadBE16(at: offset - 2) {
            case EthernetHeader.typeIPv4, EthernetHeader.typeIPv6:
                return offset
            case EthernetHeader.typeVLAN, EthernetHeader.typeQinQ:
                offset += 4
            default:
                return nil
            }
        }
        return nil
    }

    /// Splits `packet` (an IP packet or Ethernet frame, without the virtio-net header) as `header`
    /// describes.
    ///
    /// Each segment is appended behind whatever the buffer already holds (normally nothing, with
    /// headroom reserved for the transport header). All checks happen before the first write, so a
    /// drop leaves every buffer as it was.
    ///
    /// - Returns: ``SegmentResult/segments(_:)``, or a drop: `malformedOffload` for an unknown or
    ///   mismatched GSO type, an IP version other than 4 or 6, IPv6 extension headers, a fragment,
    ///   a zero `gsoSize`, headers beyond the packet, or (Ethernet) a super-packet that is not
    ///   IPv4/IPv6 or whose ethertype does not match its IP version; `offloadBatchTooSmall` when
    ///   the segments outnumber the batch; `packetTooBig` when a segment does not fit its buffer's
    ///   tailroom.
    public static func split(
        _ packet: UnsafeRawBufferPointer, header: VirtioNetHeader, linkHeaderLength: Int = 0,
        into batch: UnsafeMutableBufferPointer<PacketBuffer>
    ) -> SegmentResult {
        guard let frame = packet.baseAddress, packet.count > 0 else { return .drop(.malformedOffload) }
        let kind = header.gsoKind
        if kind == VirtioNetHeader.gsoNone {
            // csum_start counts from the start of the frame, link header included.
            return copySingle(frame, count: packet.count, header: header, into: batch)
        }
        guard let link = networkOffset(packet, linkHeaderLength: linkHeaderLength), packet.count > link else {
            return .drop(.malformedOffload)
        }
        let input = frame + link
        let total = packet.count - link

        // IP header.
        let version = input.load(as: UInt8.self) &>> 4
        let isV6: Bool
        let ipHeaderLength: Int
        let transportProtocol: UInt8
        switch version {
        case 4:
            guard total >= 20 else { return .drop(.malformedOffload) }
            guard link == 0 || frame.loadBE16(at: link - 2) == EthernetHeader.typeIPv4 else {
                return .drop(.malformedOffload)
            }
            ipHeaderLength = Int(input.load(as: UInt8.self) & 0x0F) * 4
            guard ipHeaderLength >= 20, ipHeaderLength <= total else { return .drop(.malformedOffload) }
            // More-fragments set or a fragment offset: a fragment cannot be a super-packet.
            guard input.loadBE16(at: 6) & 0x3FFF == 0 else { return .drop(.malformedOffload) }
            transportProtocol = input.load(fromByteOffset: 9, as: UInt8.self)
            isV6 = false
        case 6:
            guard total >= 40 else { return .drop(.malformedOffload) }
            guard link == 0 || frame.loadBE16(at: link - 2) == EthernetHeader.typeIPv6 else {
                return .drop(.malformedOffload)
            }
            ipHeaderLength = 40
            transportProtocol = input.load(fromByteOffset: 6, as: UInt8.self)
            isV6 = true
        default:
            return .drop(.malformedOffload)
        }
        let isTCP: Bool
        switch kind {
        case VirtioNetHeader.gsoTCPv4:
            guard !isV6, transportProtocol == 6 else { return .drop(.malformedOffload) }
            isTCP = true
        case VirtioNetHeader.gsoTCPv6:
            guard isV6, transportProtocol == 6 else { return .drop(.malformedOffload) }
            isTCP = true
        case VirtioNetHeader.gsoUDPL4:
            guard transportProtocol == 17 else { return .drop(.malformedOffload) }
            isTCP = false
        default:
            return .drop(.malformedOffload)
        }

        // L4 header: trust the packet, not the header's hdr_len (the kernel may set it to other
        // values, e.g. the whole first segment on the forwarding path).
        let l4 = ipHeaderLength
        let l4HeaderLength: Int
        if isTCP {
            guard total >= l4 + 20 else { return .drop(.malformedOffload) }
            l4HeaderLength = Int(input.load(fromByteOffset: l4 + 12, as: UInt8.self) &>> 4) * 4
            guard l4HeaderLength >= 20, l4 + l4HeaderLength <= total else { return .drop(.malformedOffload) }
        } else {
            l4HeaderLength = 8
            guard l4 + 8 <= total else { return .drop(.malformedOffload) }
        }
        let headersLength = l4 + l4HeaderLength
        let gsoSize = Int(header.gsoSize)
        guard gsoSize > 0 else { return .drop(.malformedOffload) }
        let payloadLength = total - headersLength
        let segmentCount = payloadLength == 0 ? 1 : (payloadLength + gsoSize - 1) / gsoSize
        guard segmentCount <= batch.count else { return .drop(.offloadBatchTooSmall) }
        let largest = headersLength + min(gsoSize, payloadLength)
        guard largest - (isV6 ? 40 : 0) <= 0xFFFF else { return .drop(.malformedOffload) }
        var remaining = payloadLength
        for index in 0..<segmentCount {
            let slice = min(gsoSize, remaining)
            guard batch[index].tailroom >= link + headersLength + slice else { return .drop(.packetTooBig) }
            remaining -= slice
        }

        // Per-packet constants.
        let addressSize = isV6 ? 16 : 4
        let addressSum = InternetChecksum.sum(input + (isV6 ? 8 : 12), count: 2 * addressSize)
        let pseudoBase = InternetChecksum.add(addressSum, InternetChecksum.word(UInt16(transportProtocol)))
        let checksumField = l4 + (isTCP ? 16 : 6)
        let firstIdentification = isV6 ? 0 : input.loadBE16(at: 4)
        let firstSequence = isTCP ? input.loadBE32(at: l4 + 4) : 0
        let originalFlags = isTCP ? input.load(fromByteOffset: l4 + 13, as: UInt8.self) : 0

        var payloadOffset = headersLength
        for index in 0..<segmentCount {
            let slice = min(gsoSize, total - payloadOffset)
            let segmentLength = headersLength + slice
            let start = batch[index].append(link + segmentLength).baseAddress!
            if link > 0 { start.copyMemory(from: frame, byteCount: link) }
            let out = start + link
            out.copyMemory(from: input, byteCount: headersLength)
            if slice > 0 { (out + headersLength).copyMemory(from: input + payloadOffset, byteCount: slice) }
            payloadOffset += slice

            if isV6 {
                out.storeBE16(UInt16(truncatingIfNeeded: segmentLength - 40), at: 4)
            } else {
                out.storeBE16(UInt16(truncatingIfNeeded: segmentLength), at: 2)
                out.storeBE16(firstIdentification &+ UInt16(truncatingIfNeeded: index), at: 4)
                out.storeBE16(0, at: 10)
                out.storeBE16(~InternetChecksum.fold(InternetChecksum.sum(out, count: ipHeaderLength)), at: 10)
            }
            if isTCP {
                out.storeBE32(firstSequence &+ UInt32(truncatingIfNeeded: index &* gsoSize), at: l4 + 4)
                var flags = originalFlags
                if index != segmentCount - 1 { flags &= ~(TCPFlags.fin | TCPFlags.psh) }
                if index != 0 { flags &= ~TCPFlags.cwr }
                out.storeBytes(of: flags, toByteOffset: l4 + 13, as: UInt8.self)
            } else {
                out.storeBE16(UInt16(truncatingIfNeeded: segmentLength - l4), at: l4 + 4)
            }
            out.storeBE16(0, at: checksumField)
            let transportLength = segmentLength - l4
            let pseudo = pseudoBase &+ UInt64(UInt32(truncatingIfNeeded: transportLength).bigEndian)
            var checksum = ~InternetChecksum.fold(InternetChecksum.sum(out + l4, count: transportLength, initial: pseudo))
            if !isTCP && checksum == 0 { checksum = 0xFFFF }  // RFC 768: zero means "no checksum".
            out.storeBE16(checksum, at: checksumField)
        }
        return .segments(segmentCount)
    }

    /// `GSO_NONE`: copies the packet into the first buffer and completes a partial checksum.
    @usableFromInline
    static func copySingle(
        _ input: UnsafeRawPointer, count: Int, header: VirtioNetHeader, into batch: UnsafeMutableBufferPointer<PacketBuffer>
    ) -> SegmentResult {
        guard batch.count >= 1 else { return .drop(.offloadBatchTooSmall) }
        let start = Int(header.checksumStart)
        let field = start + Int(header.checksumOffset)
        if header.needsChecksum {
            guard field + 2 <= count else { return .drop(.malformedOffload) }
        }
        guard count <= batch[0].tailroom else { return .drop(.packetTooBig) }
        let out = batch[0].append(count).baseAddress!
        out.copyMemory(from: input, byteCount: count)
        if header.needsChecksum {
            // The field holds the pseudo-header sum, so summing over it adds that sum in.
            var checksum = ~InternetChecksum.fold(InternetChecksum.sum(out + start, count: count - start))
            if checksum == 0 { checksum = 0xFFFF }  // as the kernel's skb_checksum_help does
            out.storeBE16(checksum, at: field)
        }
        return .segments(1)
    }
}

/// Ethernet II header constants.
public enum EthernetHeader {
    /// Destination MAC, source MAC, ethertype.
    public static let size = 14
    /// Ethertype IPv4.
    public static let typeIPv4: UInt16 = 0x0800
    /// Ethertype IPv6.
    public static let typeIPv6: UInt16 = 0x86DD
    /// Ethertype of an 802.1Q VLAN tag (4 bytes: TCI, then the inner ethertype).
    public static let typeVLAN: UInt16 = 0x8100
    /// Ethertype of an 802.1ad (QinQ) service tag.
    public static let typeQinQ: UInt16 = 0x88A8
}

/// TCP header flag bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR), in byte 13 of the header.
@usableFromInline
enum TCPFlags {
    @usableFromInline static let fin: UInt8 = 0x01
    @usableFromInline static let syn: UInt8 = 0x02
    @usableFromInline static let rst: UInt8 = 0x04
    @usableFromInline static let psh: UInt8 = 0x08
    @usableFromInline static let ack: UInt8 = 0x10
    @usableFromInline static let urg: UInt8 = 0x20
    @usableFromInline static let ece: UInt8 = 0x40
    @usableFromInline static let cwr: UInt8 = 0x80
}
