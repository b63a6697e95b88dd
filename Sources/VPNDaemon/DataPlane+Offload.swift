// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// Which kernel offloads the data plane may use. The Linux layer reports what the kernel
/// accepted; the composition root passes it here.
public struct DataPlaneOffloads: Sendable, Equatable {
    /// Device frames carry a 10-byte virtio-net header: reads may be 64 KiB TSO/USO
    /// super-packets, and writes may be coalesced TCP super-packets.
    public var deviceVirtioHeader: Bool
    /// Bytes of link header in front of each IP packet on the device: 0 for tun, 14 (Ethernet)
    /// for tap.
    public var linkHeaderLength: Int

    public init(deviceVirtioHeader: Bool = false, linkHeaderLength: Int = 0) {
        self.deviceVirtioHeader = deviceVirtioHeader
        self.linkHeaderLength = linkHeaderLength
    }
}

/// Buffers for the offload paths, allocated once per data plane.
///
/// Send side: each device read (a super-packet) is split into a *region*, its segments laid out
/// back to back at a fixed stride, so that once sealed in place they form one contiguous run of
/// equal-sized datagrams: exactly what a UDP GSO send takes. Receive side: decrypted packets are
/// coalesced into *super buffers*.
///
/// Not thread-safe; owned by the data-plane thread.
final class OffloadBuffers {
    /// Tun reads per round.
    static let reads = 8
    /// Most segments one super-packet may split into (a 64 KiB TSO of MSS ≥ 512).
    static let segmentsPerRead = 128
    /// Delivered packets held for coalescing: a GRO batch of 8 × 64 datagrams.
    static let maximumPendingWrites = 512
    /// Super buffers for coalesced packets.
    static let superBufferCount = 16
    /// The largest frame a device read or coalesced write can hold (header + 64 KiB).
    static let frameCapacity = PacketSlab.slotSize(payload: 65535, headroom: VirtioNetHeader.size)

    /// The tunnel MTU; a reload may lower it (and raise it again up to the MTU the buffers were
    /// sized for, ``maximumStride``).
    @exclusivity(unchecked) var mtu: Int  // read per segment: no runtime exclusivity check (only the data-plane thread touches it)
    let headroom: Int
    /// 0 for tun (IP packets), 14 for tap (Ethernet frames: the MTU counts the Ethernet payload).
    let linkHeaderLength: Int
    /// Whether sealing pads plaintexts (tun does, tap does not).
    let pads: Bool
    /// The largest stride a segment may need: headroom, an MTU-sized packet (padded for tun, plus
    /// the Ethernet header for tap), the tag.
    let maximumStride: Int

    let readSlab: PacketSlab
    let reads: UnsafeMutableBufferPointer<PacketBuffer>
    let regionMemory: UnsafeMutableRawPointer
    let regionSize: Int
    let segments: UnsafeMutableBufferPointer<PacketBuffer>
    let segmentSent: UnsafeMutablePointer<Bool>
    let segmentDestinations: UnsafeMutablePointer<Endpoint>

    let gsoBuffers: UnsafeMutableBufferPointer<PacketBuffer>
    let gsoSizes: UnsafeMutableBufferPointer<Int>
    let gsoDestinations: UnsafeMutableBufferPointer<Endpoint>

    let coalescer: TCPCoalescer
    let superSlab: PacketSlab
    let superBuffers: UnsafeMutableBufferPointer<PacketBuffer>
    let results: UnsafeMutableBufferPointer<PacketBuffer>

    init(mtu: Int, headroom: Int, linkHeaderLength: Int = 0, pads: Bool = true) {
        self.mtu = mtu
        self.headroom = headroom
        self.linkHeaderLength = linkHeaderLength
        self.pads = pads
        maximumStride = headroom + (pads ? TransportData.paddedLength(mtu, mtu: mtu) : mtu) + linkHeaderLength
            + TransportData.tailroom
        readSlab = PacketSlab(slotSize: Self.frameCapacity, slotCount: Self.reads)
        reads = .allocate(capacity: Self.reads)
        for i in 0..<Self.reads { (reads.baseAddress! + i).initialize(to: readSlab.buffer(i, headroom: 0)) }
        regionSize = maximumStride * Self.segmentsPerRead
        regionMemory = .allocate(byteCount: regionSize * Self.reads, alignment: 64)
        segments = .allocate(capacity: Self.segmentsPerRead)
        segments.initialize(repeating: readSlab.buffer(0, headroom: 0))
        segmentSent = .allocate(capacity: Self.segmentsPerRead)
        segmentSent.initialize(repeating: false, count: Self.segmentsPerRead)
        segmentDestinations = .allocate(capacity: Self.segmentsPerRead)
        segmentDestinations.initialize(repeating: .none, count: Self.segmentsPerRead)
        let sends = Self.reads * GSOSendPlan.maximumSends(segments: Self.segmentsPerRead)
        gsoBuffers = .allocate(capacity: sends)
        gsoBuffers.initialize(repeating: readSlab.buffer(0, headroom: 0))
        gsoSizes = .allocate(capacity: sends)
        gsoSizes.initialize(repeating: 0)
        gsoDestinations = .allocate(capacity: sends)
        gsoDestinations.initialize(repeating: .none)
        coalescer = TCPCoalescer(capacity: Self.maximumPendingWrites, linkHeaderLength: linkHeaderLength)
        superSlab = PacketSlab(slotSize: Self.frameCapacity, slotCount: Self.superBufferCount)
        superBuffers = .allocate(capacity: Self.superBufferCount)
        for i in 0..<Self.superBufferCount {
            (superBuffers.baseAddress! + i).initialize(to: superSlab.buffer(i, headroom: 0))
        }
        results = .allocate(capacity: Self.maximumPendingWrites)
        results.initialize(repeating: readSlab.buffer(0, headroom: 0))
    }

    deinit {
        reads.deallocate()
        regionMemory.deallocate()
        segments.deallocate()
        segmentSent.deallocate()
        segmentDestinations.deallocate()
        gsoBuffers.deallocate()
        gsoSizes.deallocate()
        gsoDestinations.deallocate()
        superBuffers.deallocate()
        results.deallocate()
    }

    func resetSuperBuffers() {
        for i in 0..<Self.superBufferCount { superBuffers[i].reset(headroom: 0) }
    }

    /// The base of read `index`'s region.
    func region(_ index: Int) -> UnsafeMutableRawPointer { regionMemory + index * regionSize }

    /// The segment stride for a super-packet (an IP packet, or an Ethernet frame for tap): every
    /// segment but the last has the same length, so once sealed they are all `stride` bytes. A drop
    /// when the packet is not one we can lay out: `malformedOffload` for headers we cannot read,
    /// `packetTooBig` for segments over the MTU (as the tunnel counts such a packet without offloads).
    func stride(for frame: UnsafeRawBufferPointer, header: VirtioNetHeader) -> SegmentStride {
        let kind = header.gsoKind
        if kind == VirtioNetHeader.gsoNone { return .stride(maximumStride) }
        // tap: the IP packet starts behind the Ethernet header and any VLAN tags.
        guard let link = GSOSplitter.networkOffset(frame, linkHeaderLength: linkHeaderLength) else {
            return .drop(.malformedOffload)
        }
        let packet = UnsafeRawBufferPointer(rebasing: frame[link...])
        guard packet.count >= 20, let base = packet.baseAddress else { return .drop(.malformedOffload) }
        let version = base.load(as: UInt8.self) >> 4
        let ipHeader: Int
        switch version {
        case 4: ipHeader = Int(base.load(as: UInt8.self) & 0x0F) * 4
        case 6: ipHeader = 40
        default: return .drop(.malformedOffload)
        }
        let transportHeader: Int
        if kind == VirtioNetHeader.gsoTCPv4 || kind == VirtioNetHeader.gsoTCPv6 {
            guard packet.count >= ipHeader + 20 else { return .drop(.malformedOffload) }
            transportHeader = Int(base.load(fromByteOffset: ipHeader + 12, as: UInt8.self) >> 4) * 4
        } else {
            transportHeader = 8
        }
        // Each segment: the link header, then one IP segment of at most the MTU (for tap the
        // tunnel accepts frames up to MTU + 14).
        let segment = link + ipHeader + transportHeader + Int(header.gsoSize)
        guard segment <= mtu + linkHeaderLength else { return .drop(.packetTooBig) }
        // headroom, the (padded) segment, the tag: a sealed segment fills its stride exactly
        // when the headroom is the 16-byte data header (UDP).
        return .stride(headroom + (pads ? TransportData.paddedLength(segment, mtu: mtu) : segment) + ChaChaTag.size)
    }
}

/// The stride of a super-packet's segments, or why it cannot be laid out.
enum SegmentStride {
    case stride(Int)
    case drop(DropReason)
}

@available(*, unavailable)
extension OffloadBuffers: Sendable {}


/// The AEAD tag that follows each sealed message.
enum ChaChaTag {
    static let size = 16
}
