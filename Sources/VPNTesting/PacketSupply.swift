// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// Packet buffers for tests and simulations, carved from one ``PacketSlab`` the way the data
/// plane carves them: ``TransportData/headroom`` (16 bytes) in front and room behind for an
/// MTU-sized packet (plus an Ethernet header), the padding and the tag.
///
/// Not thread-safe; a buffer stays valid as long as the supply and is overwritten by the next
/// user of the same slot.
public final class PacketSupply {
    /// The memory behind every buffer.
    public let slab: PacketSlab
    /// Headroom of a fresh buffer.
    public let headroom: Int
    /// The largest inner packet the buffers are sized for (Ethernet header not included).
    public let mtu: Int

    /// `slotCount` slots for packets of up to `mtu` bytes (tap frames: `mtu` + 14), each with
    /// `headroom` in front and at least ``TransportData/tailroom`` behind the largest packet.
    public init(mtu: Int, slotCount: Int = 8, headroom: Int = TransportData.headroom) {
        precondition(mtu > 0 && slotCount > 0, "PacketSupply needs a positive MTU and slot count")
        self.mtu = mtu
        self.headroom = headroom
        slab = PacketSlab(
            slotSize: PacketSlab.slotSize(payload: mtu + 14, headroom: headroom, tailroom: TransportData.tailroom),
            slotCount: slotCount)
    }

    /// An empty buffer over `slot` with the supply's headroom (or `headroom`).
    public func buffer(_ slot: Int = 0, headroom: Int? = nil) -> PacketBuffer {
        slab.buffer(slot, headroom: headroom ?? self.headroom)
    }

    /// A buffer over `slot` holding a copy of `bytes`.
    public func buffer(holding bytes: [UInt8], slot: Int = 0, headroom: Int? = nil) -> PacketBuffer {
        var buffer = self.buffer(slot, headroom: headroom)
        bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
        return buffer
    }
}

@available(*, unavailable)
extension PacketSupply: Sendable {}

extension PacketBuffer {
    /// A copy of the buffer's bytes (tests only: it allocates).
    public var byteArray: [UInt8] { Array(UnsafeRawBufferPointer(bytes)) }
}
