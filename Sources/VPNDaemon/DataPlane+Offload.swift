// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// Which kernel offloads the data plane may use. The Linux layer reports what the kernel
/// accepted; the composition root passes it here.
public struct DataPlaneOffloads: Sendable, Equatable {
    /// Device frames carry a 10-byte virtio-net header: reads may be 64 KiB TSO/USO
    /// super-packets, and writes may be coalesced TCP super-packets (tun only).
    public var deviceVirtioHeader: Bool

    public init(deviceVirtioHeader: Bool = false) {
        self.deviceVirtioHeader = deviceVirtioHeader
    }
}

/// Buffers for the offload paths, allocated once per data plane.
///
/// Send side: each tun read (a super-packet) is split into a *region*, its segments laid out
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
    /// A UDP GSO send carries at most this many datagrams (UDP_MAX_SEGMENTS).
    static let segmentsPerSend = 64
    /// A UDP GSO send carries at most this many bytes (the largest UDP payload over IPv4).
    static let maximumSegmentedBytes = 65507
    /// Delivered packets held for coalescing: a GRO batch of 8 × 64 datagrams.
    static let maximumPendingWrites = 512
    /// Super buffers for coalesced packets.
    static let superBufferCount = 16
    /// The largest frame a device read or coalesced write can hold (header + 64 KiB).
    static let frameCapacity = VirtioNetHeader.size + 65535 + 64

    let mtu: Int
    let headroom: Int
    /// The largest stride a segment may need: headroom, an MTU-sized packet padded, the tag.
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

    init(mtu: Int, headroom: Int) {
        self.mtu = mtu
        self.headroom = headroom
        maximumStride = headroom + TransportData.paddedLength(mtu, mtu: mtu) + TransportData.tailroom
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
        let sends = Self.reads * (Self.segmentsPerRead / Self.segmentsPerSend + 1)
        gsoBuffers = .allocate(capacity: sends)
        gsoBuffers.initialize(repeating: readSlab.buffer(0, headroom: 0))
        gsoSizes = .allocate(capacity: sends)
        gsoSizes.initialize(repeating: 0)
        gsoDestinations = .allocate(capacity: sends)
        gsoDestinations.initialize(repeating: .none)
        coalescer = TCPCoalescer(capacity: Self.maximumPendingWrites)
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

    /// The segment stride for a super-packet: every segment but the last has the same length,
    /// so once sealed they are all `stride` bytes. nil when the packet is not one we can lay
    /// out (the splitter then reports why).
    func stride(for packet: UnsafeRawBufferPointer, header: VirtioNetHeader) -> Int? {
        let kind = header.gsoKind
        if kind == VirtioNetHeader.gsoNone { return maximumStride }
        guard packet.count >= 20, let base = packet.baseAddress else { return nil }
        let version = base.load(as: UInt8.self) >> 4
        let ipHeader: Int
        switch version {
        case 4: ipHeader = Int(base.load(as: UInt8.self) & 0x0F) * 4
        case 6: ipHeader = 40
        default: return nil
        }
        let transportHeader: Int
        if kind == VirtioNetHeader.gsoTCPv4 || kind == VirtioNetHeader.gsoTCPv6 {
            guard packet.count >= ipHeader + 20 else { return nil }
            transportHeader = Int(base.load(fromByteOffset: ipHeader + 12, as: UInt8.self) >> 4) * 4
        } else {
            transportHeader = 8
        }
        let segment = ipHeader + transportHeader + Int(header.gsoSize)
        guard segment <= mtu else { return nil }
        // headroom, the padded segment, the tag: a sealed segment fills its stride exactly
        // when the headroom is the 16-byte data header (UDP).
        return headroom + TransportData.paddedLength(segment, mtu: mtu) + ChaChaTag.size
    }
}

@available(*, unavailable)
extension OffloadBuffers: Sendable {}


/// The AEAD tag that follows each sealed message.
enum ChaChaTag {
    static let size = 16
}
