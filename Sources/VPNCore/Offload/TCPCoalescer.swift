// SPDX-License-Identifier: MIT
import VPNBasics

/// What one ``TCPCoalescer/coalesce(_:superBuffers:into:)`` call produced.
public struct CoalesceResult: Equatable, Sendable {
    /// How many entries of `results` to write to the tun, in order.
    public var writeCount: Int
    /// How many super buffers, from the start of `superBuffers`, now hold merged packets.
    public var superBuffersUsed: Int

    /// A result with these counts.
    @inlinable
    public init(writeCount: Int, superBuffersUsed: Int) {
        self.writeCount = writeCount
        self.superBuffersUsed = superBuffersUsed
    }
}

/// Receive-side TCP coalescing in user space (GRO): merges consecutive segments of one TCP flow
/// into a super-packet that the tun accepts behind a ``VirtioNetHeader``.
///
/// tun devices take IP packets (`linkHeaderLength` 0), tap devices Ethernet frames
/// (`linkHeaderLength` 14): there only untagged IPv4/IPv6 frames merge, and two frames belong to
/// one flow only if their Ethernet headers are equal too; the merged frame keeps that header, and
/// `csum_start` and `hdr_len` count from the start of the frame (as Linux's
/// `virtio_net_hdr_to_skb` reads them). Other frames are written alone.
///
/// Flow, per batch of decrypted packets in arrival order:
/// 1. Each packet is either merged into the latest entry of its TCP flow or starts a new entry, so
///    entries keep the order of their first packet; flows interleave, a flow's packets never
///    reorder (a packet that cannot merge becomes the flow's latest entry).
/// 2. A packet merges when both are IPv4 (no options, not fragmented) or both IPv6 (no extension
///    headers), TCP with only ACK or ACK|PSH set, a payload of at least one byte, the same
///    addresses, ports, acknowledgement number, TCP header length and options, the same TOS/TTL/DF
///    (IPv4) or traffic class/flow label/hop limit (IPv6), the next sequence number, no PSH on the
///    entry so far, no segment larger than the first and none after a smaller one, at most
///    65,535 bytes in all, and a valid TCP checksum on both (once merged, the kernel no longer
///    verifies it).
/// 3. On the first merge the entry's packet is copied into the next free super buffer, then each
///    further payload is appended. At the end, merged entries get `NEEDS_CSUM`, `GSO_TCPV4/6`,
///    `gso_size` = the first payload, `hdr_len`, `csum_start` = IP header length, `csum_offset` =
///    16, the pseudo-header sum in the TCP checksum field, and fixed IP lengths and IPv4 header
///    checksum. Other entries are written as they came, behind an all-zero header prepended
///    into their own headroom (no copy).
///
/// Not thread-safe: owned by one data-plane thread. Allocates only in `init`.
public final class TCPCoalescer {
    /// The most packets one call accepts.
    public let capacity: Int
    /// 0 for IP packets (tun), 14 for Ethernet frames (tap).
    public let linkHeaderLength: Int
    @usableFromInline let entries: UnsafeMutablePointer<Entry>

    /// A coalescer for batches of up to `capacity` packets: IP packets when `linkHeaderLength` is
    /// 0, Ethernet frames when it is 14.
    public init(capacity: Int, linkHeaderLength: Int = 0) {
        precondition(capacity > 0, "TCPCoalescer needs a positive capacity")
        precondition(linkHeaderLength == 0 || linkHeaderLength == EthernetHeader.size,
            "TCPCoalescer linkHeaderLength is 0 (IP packets) or 14 (Ethernet frames)")
        self.capacity = capacity
        self.linkHeaderLength = linkHeaderLength
        entries = .allocate(capacity: capacity)
        entries.initialize(repeating: Entry(), count: capacity)
    }

    deinit {
        entries.deinitialize(count: capacity)
        entries.deallocate()
    }

    /// Coalesces `packets` (IP packets or Ethernet frames, one per buffer, each with at least 10
    /// bytes of headroom).
    ///
    /// - Parameters:
    ///   - packets: the decrypted packets in arrival order. Those written alone get a 10-byte
    ///     all-zero ``VirtioNetHeader`` prepended; the bytes of merged ones are copied out.
    ///   - superBuffers: empty buffers for merged packets, used from the start; a buffer with
    ///     10 + 14 + 65,535 bytes of tailroom never limits a merge. When they run out, packets are
    ///     written alone.
    ///   - results: receives the buffers to write to the tun (header included), at least
    ///     `packets.count` long.
    /// - Returns: how many `results` to write and how many super buffers were used. Return all
    ///   `packets` and the used super buffers to their pools after writing.
    public func coalesce(
        _ packets: UnsafeMutableBufferPointer<PacketBuffer>,
        superBuffers: UnsafeMutableBufferPointer<PacketBuffer>,
        into results: UnsafeMutableBufferPointer<PacketBuffer>
    ) -> CoalesceResult {
        precondition(packets.count <= capacity, "TCPCoalescer batch larger than its capacity")
        precondition(results.count >= packets.count, "TCPCoalescer results shorter than the batch")
        var entryCount = 0
        var superUsed = 0

        for index in 0..<packets.count {
            let bytes = packets[index].bytes
            let packet = Segment(bytes, linkHeaderLength: linkHeaderLength)
            var entry = Entry()
            entry.packetIndex = index
            if packet.isTCP {
                // The flow's latest entry, if any.
                var latest = entryCount - 1
                while latest >= 0 {
                    let candidate = entries[latest]
                    if candidate.isTCP && candidate.flowTag == packet.flowTag && packet.sameFlow(as: candidate) { break }
                    latest -= 1
                }
                if latest >= 0 && packet.canMerge {
                    switch merge(packet, into: &entries[latest], superBuffers: superBuffers, superUsed: &superUsed) {
                    case .merged: continue
                    case .startEntry: entry.open = true
                    case .alone: entry.open = false
                    }
                } else {
                    entry.open = packet.canMerge
                }
                entry.isTCP = true
                entry.flowTag = packet.flowTag
                entry.isV6 = packet.isV6
                entry.head = bytes.baseAddress.map { $0 + packet.linkHeaderLength }
                entry.length = packet.length
                entry.ipHeaderLength = packet.ipHeaderLength
                entry.tcpHeaderLength = packet.tcpHeaderLength
                entry.gsoSize = packet.payloadLength
                entry.lastPayload = packet.payloadLength
                entry.nextSequence = packet.sequence &+ UInt32(truncatingIfNeeded: packet.payloadLength)
                entry.segments = 1
            }
            entries[entryCount] = entry
            entryCount += 1
        }

        for index in 0..<entryCount {
            let entry = entries[index]
            if entry.superIndex >= 0 {
                finishMerged(entry)
                results[index] = superBuffers[entry.superIndex]
            } else {
                precondition(packets[entry.packetIndex].headroom >= VirtioNetHeader.size,
                    "TCPCoalescer needs 10 bytes of headroom in each packet")
                let header = packets[entry.packetIndex].prepend(VirtioNetHeader.size)
                VirtioNetHeader().write(to: header.baseAddress!)
                results[index] = packets[entry.packetIndex]
            }
        }
        return CoalesceResult(writeCount: entryCount, superBuffersUsed: superUsed)
    }

    @usableFromInline
    enum MergeOutcome { case merged, startEntry, alone }

    /// Appends `packet` to `entry` if the rules allow; otherwise says what the packet becomes.
    @usableFromInline
    func merge(
        _ packet: Segment, into entry: inout Entry, superBuffers: UnsafeMutableBufferPointer<PacketBuffer>,
        superUsed: inout Int
    ) -> MergeOutcome {
        guard entry.open, let head = entry.head else { return .startEntry }
        let p = packet.base
        let link = linkHeaderLength
        guard entry.tcpHeaderLength == packet.tcpHeaderLength,
            entry.nextSequence == packet.sequence,
            entry.lastPayload == entry.gsoSize,
            packet.payloadLength <= entry.gsoSize,
            entry.length + packet.payloadLength <= 0xFFFF
        else { return .startEntry }
        let l4 = entry.ipHeaderLength
        // Acknowledgement number, then options.
        guard head.loadUnaligned(fromByteOffset: l4 + 8, as: UInt32.self)
            == p.loadUnaligned(fromByteOffset: l4 + 8, as: UInt32.self)
        else { return .startEntry }
        var offset = 20
        while offset < entry.tcpHeaderLength {
            guard head.loadUnaligned(fromByteOffset: l4 + offset, as: UInt32.self)
                == p.loadUnaligned(fromByteOffset: l4 + offset, as: UInt32.self)
            else { return .startEntry }
            offset += 4
        }
        if entry.isV6 {
            // Version, traffic class, flow label; hop limit.
            guard head.loadUnaligned(as: UInt32.self) == p.loadUnaligned(as: UInt32.self),
                head.load(fromByteOffset: 7, as: UInt8.self) == p.load(fromByteOffset: 7, as: UInt8.self)
            else { return .startEntry }
        } else {
            // TOS; DF and reserved bits; TTL.
            guard head.load(fromByteOffset: 1, as: UInt8.self) == p.load(fromByteOffset: 1, as: UInt8.self),
                head.load(fromByteOffset: 6, as: UInt8.self) & 0xE0 == p.load(fromByteOffset: 6, as: UInt8.self) & 0xE0,
                head.load(fromByteOffset: 8, as: UInt8.self) == p.load(fromByteOffset: 8, as: UInt8.self)
            else { return .startEntry }
        }
        // Room for the merged packet.
        if entry.superIndex < 0 {
            guard superUsed < superBuffers.count,
                superBuffers[superUsed].tailroom >= VirtioNetHeader.size + link + entry.length + packet.payloadLength
            else { return .startEntry }
        } else {
            guard superBuffers[entry.superIndex].tailroom >= packet.payloadLength else { return .startEntry }
        }
        // Checksums, now that the merge is otherwise allowed.
        if entry.segments == 1 && !Segment.checksumValid(UnsafeRawPointer(head), length: entry.length,
            ipHeaderLength: l4, isV6: entry.isV6)
        {
            entry.open = false
            return .startEntry
        }
        guard packet.checksumValid else { return .alone }

        if entry.superIndex < 0 {
            precondition(superBuffers[superUsed].count == 0, "TCPCoalescer super buffers must be empty")
            entry.superIndex = superUsed
            superUsed += 1
            superBuffers[entry.superIndex].append(VirtioNetHeader.size)
            let copy = superBuffers[entry.superIndex].append(link + entry.length).baseAddress!
            copy.copyMemory(from: head - link, byteCount: link + entry.length)
            entry.head = copy + link
        }
        let headersLength = l4 + entry.tcpHeaderLength
        superBuffers[entry.superIndex].append(
            contentsOf: UnsafeRawBufferPointer(start: p + headersLength, count: packet.payloadLength))
        entry.length += packet.payloadLength
        entry.nextSequence &+= UInt32(truncatingIfNeeded: packet.payloadLength)
        entry.lastPayload = packet.payloadLength
        entry.segments += 1
        if packet.hasPSH {
            // PSH ends a merge: it may only be on the last segment.
            let merged = entry.head!
            let flags = merged.load(fromByteOffset: l4 + 13, as: UInt8.self)
            merged.storeBytes(of: flags | TCPFlags.psh, toByteOffset: l4 + 13, as: UInt8.self)
            entry.open = false
        }
        return .merged
    }

    /// Fixes the IP header, puts the pseudo-header sum in the TCP checksum and writes the header.
    @usableFromInline
    func finishMerged(_ entry: Entry) {
        let packet = entry.head!
        let l4 = entry.ipHeaderLength
        let link = linkHeaderLength
        if entry.isV6 {
            packet.storeBE16(UInt16(truncatingIfNeeded: entry.length - 40), at: 4)
        } else {
            packet.storeBE16(UInt16(truncatingIfNeeded: entry.length), at: 2)
            packet.storeBE16(0, at: 10)
            packet.storeBE16(~InternetChecksum.fold(InternetChecksum.sum(packet, count: l4)), at: 10)
        }
        let pseudo = InternetChecksum.pseudoHeaderSum(
            addresses: packet + (entry.isV6 ? 8 : 12), addressSize: entry.isV6 ? 16 : 4, protocol: 6,
            length: entry.length - l4)
        packet.storeBE16(InternetChecksum.fold(pseudo), at: l4 + 16)
        VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum,
            gsoType: entry.isV6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
            headerLength: UInt16(truncatingIfNeeded: link + l4 + entry.tcpHeaderLength),
            gsoSize: UInt16(truncatingIfNeeded: entry.gsoSize),
            checksumStart: UInt16(truncatingIfNeeded: link + l4),
            checksumOffset: 16
        ).write(to: packet - link - VirtioNetHeader.size)
    }

    /// One output entry: a packet written alone, or the super-packet that packets merged into.
    @usableFromInline
    struct Entry {
        @usableFromInline var packetIndex = 0
        @usableFromInline var superIndex = -1
        /// The IP header (behind the link header, if any).
        @usableFromInline var head: UnsafeMutableRawPointer? = nil
        /// The IP packet's length, without the link header.
        @usableFromInline var length = 0
        @usableFromInline var ipHeaderLength = 0
        @usableFromInline var tcpHeaderLength = 0
        @usableFromInline var gsoSize = 0
        @usableFromInline var lastPayload = 0
        @usableFromInline var segments = 0
        @usableFromInline var flowTag: UInt64 = 0
        @usableFromInline var nextSequence: UInt32 = 0
        @usableFromInline var isTCP = false
        @usableFromInline var isV6 = false
        @usableFromInline var open = false

        @usableFromInline init() {}
    }

    /// What the coalescer needs to know about one incoming packet.
    @usableFromInline
    struct Segment {
        /// The IP header (behind the link header, if any).
        @usableFromInline var base: UnsafeRawPointer
        /// The IP packet's length, without the link header.
        @usableFromInline var length = 0
        /// Bytes of link header in front of `base`, compared as part of the flow.
        @usableFromInline var linkHeaderLength = 0
        /// TCP with a complete header: it belongs to a flow.
        @usableFromInline var isTCP = false
        /// A candidate for merging (see the type's rules).
        @usableFromInline var canMerge = false
        @usableFromInline var isV6 = false
        @usableFromInline var hasPSH = false
        @usableFromInline var ipHeaderLength = 0
        @usableFromInline var tcpHeaderLength = 0
        @usableFromInline var payloadLength = 0
        @usableFromInline var sequence: UInt32 = 0
        @usableFromInline var flowTag: UInt64 = 0

        @usableFromInline
        init(_ bytes: UnsafeMutableRawBufferPointer, linkHeaderLength link: Int) {
            // A dummy base for empty buffers: nothing is read through it (isTCP stays false).
            base = UnsafeRawPointer(bytes.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 0x10)!)
            length = bytes.count
            guard length >= link + 40 else { return }  // below the smallest IPv4 + TCP header
            var etherType: UInt16 = 0
            if link > 0 {
                etherType = base.loadBE16(at: link - 2)
                base += link
                length -= link
                linkHeaderLength = link
            }
            let version = base.load(as: UInt8.self) &>> 4
            var candidate = true
            if version == 4 {
                guard link == 0 || etherType == EthernetHeader.typeIPv4 else { return }
                ipHeaderLength = Int(base.load(as: UInt8.self) & 0x0F) * 4
                guard ipHeaderLength >= 20, base.load(fromByteOffset: 9, as: UInt8.self) == 6 else { return }
                candidate = ipHeaderLength == 20 && base.loadBE16(at: 6) & 0x3FFF == 0
                    && Int(base.loadBE16(at: 2)) == length
                flowTag = base.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
            } else if version == 6 {
                guard link == 0 || etherType == EthernetHeader.typeIPv6 else { return }
                ipHeaderLength = 40
                guard length >= 60, base.load(fromByteOffset: 6, as: UInt8.self) == 6 else { return }
                candidate = Int(base.loadBE16(at: 4)) == length - 40
                isV6 = true
                flowTag = base.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    ^ base.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
                    ^ base.loadUnaligned(fromByteOffset: 24, as: UInt64.self)
                    ^ base.loadUnaligned(fromByteOffset: 32, as: UInt64.self) ^ 0x6
            } else {
                return
            }
            let l4 = ipHeaderLength
            guard length >= l4 + 20 else { return }
            tcpHeaderLength = Int(base.load(fromByteOffset: l4 + 12, as: UInt8.self) &>> 4) * 4
            guard tcpHeaderLength >= 20, l4 + tcpHeaderLength <= length else { return }
            isTCP = true
            flowTag = (flowTag &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(base.loadUnaligned(fromByteOffset: l4, as: UInt32.self))
            let flags = base.load(fromByteOffset: l4 + 13, as: UInt8.self)
            hasPSH = flags & TCPFlags.psh != 0
            payloadLength = length - l4 - tcpHeaderLength
            sequence = base.loadBE32(at: l4 + 4)
            canMerge = candidate && length <= 0xFFFF && payloadLength > 0
                && (flags == TCPFlags.ack || flags == TCPFlags.ack | TCPFlags.psh)
        }

        /// Same link header, IP version, addresses and ports as the entry's packet.
        @usableFromInline
        func sameFlow(as entry: Entry) -> Bool {
            guard entry.isV6 == isV6, let head = entry.head else { return false }
            if linkHeaderLength > 0 {
                // Ethernet: destination and source MAC, ethertype (14 bytes: 8 + the last 8, overlapping).
                guard head.loadUnaligned(fromByteOffset: -14, as: UInt64.self)
                    == base.loadUnaligned(fromByteOffset: -14, as: UInt64.self),
                    head.loadUnaligned(fromByteOffset: -8, as: UInt64.self)
                        == base.loadUnaligned(fromByteOffset: -8, as: UInt64.self)
                else { return false }
            }
            guard head.loadUnaligned(fromByteOffset: entry.ipHeaderLength, as: UInt32.self)
                == base.loadUnaligned(fromByteOffset: ipHeaderLength, as: UInt32.self)
            else { return false }
            if isV6 {
                var offset = 8
                while offset < 40 {
                    guard head.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                        == base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                    else { return false }
                    offset += 8
                }
                return true
            }
            return head.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
                == base.loadUnaligned(fromByteOffset: 12, as: UInt64.self)
        }

        /// Whether the TCP checksum verifies.
        @usableFromInline
        var checksumValid: Bool {
            Self.checksumValid(base, length: length, ipHeaderLength: ipHeaderLength, isV6: isV6)
        }

        @usableFromInline
        static func checksumValid(_ packet: UnsafeRawPointer, length: Int, ipHeaderLength: Int, isV6: Bool) -> Bool {
            let pseudo = InternetChecksum.pseudoHeaderSum(
                addresses: packet + (isV6 ? 8 : 12), addressSize: isV6 ? 16 : 4, protocol: 6,
                length: length - ipHeaderLength)
            let sum = InternetChecksum.sum(packet + ipHeaderLength, count: length - ipHeaderLength, initial: pseudo)
            return InternetChecksum.fold(sum) == 0xFFFF
        }
    }
}

@available(*, unavailable)
extension TCPCoalescer: Sendable {}
