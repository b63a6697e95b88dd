// SPDX-License-Identifier: MIT

/// The 10-byte `struct virtio_net_hdr` that a tun device opened with `IFF_VNET_HDR` puts in front
/// of every packet it reads and expects in front of every packet written to it.
///
/// Layout (Linux `include/uapi/linux/virtio_net.h`): flags (u8), gso_type (u8), hdr_len (u16),
/// gso_size (u16), csum_start (u16), csum_offset (u16). The 16-bit fields are in the tun's "vnet"
/// byte order, which is little-endian on little-endian hosts (and on any host after
/// `TUNSETVNETLE`); vpnd always uses little-endian, so the Linux layer must set `TUNSETVNETLE` on
/// a big-endian host.
public struct VirtioNetHeader: Equatable, Sendable {
    /// Size of the header in bytes.
    public static let size = 10

    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum at `checksumStart + checksumOffset` holds only
    /// the pseudo-header sum; the rest (from `checksumStart` to the end) must still be added.
    public static let flagNeedsChecksum: UInt8 = 1
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was already verified.
    public static let flagDataValid: UInt8 = 2

    /// `VIRTIO_NET_HDR_GSO_NONE`: a single packet.
    public static let gsoNone: UInt8 = 0
    /// `VIRTIO_NET_HDR_GSO_TCPV4`: an IPv4 TCP super-packet (TSO).
    public static let gsoTCPv4: UInt8 = 1
    /// `VIRTIO_NET_HDR_GSO_UDP`: IP-fragmentation UDP offload (UFO); vpnd never enables it.
    public static let gsoUDP: UInt8 = 3
    /// `VIRTIO_NET_HDR_GSO_TCPV6`: an IPv6 TCP super-packet (TSO).
    public static let gsoTCPv6: UInt8 = 4
    /// `VIRTIO_NET_HDR_GSO_UDP_L4`: a UDP super-packet split into datagrams of `gsoSize` (USO).
    public static let gsoUDPL4: UInt8 = 5
    /// `VIRTIO_NET_HDR_GSO_ECN`: a bit or-ed into `gsoType` when the TCP super-packet has CWR set.
    public static let gsoECN: UInt8 = 0x80

    /// `VIRTIO_NET_HDR_F_*` bits.
    public var flags: UInt8
    /// `VIRTIO_NET_HDR_GSO_*` value, possibly with ``gsoECN``.
    public var gsoType: UInt8
    /// Length of the IP plus L4 headers (a hint: the kernel may put other values here on read).
    public var headerLength: UInt16
    /// Payload bytes per segment.
    public var gsoSize: UInt16
    /// Offset from the start of the IP packet where checksumming starts (the L4 header).
    public var checksumStart: UInt16
    /// Offset of the checksum field from ``checksumStart`` (16 for TCP, 6 for UDP).
    public var checksumOffset: UInt16

    /// A header with the given fields; all zero describes a plain packet with nothing to do.
    @inlinable
    public init(
        flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
        checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0
    ) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// Parses the first 10 bytes of `bytes`; nil when fewer than 10 bytes are given.
    @inlinable
    public init?(parsing bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.size, let base = bytes.baseAddress else { return nil }
        self.init(
            flags: base.load(fromByteOffset: 0, as: UInt8.self),
            gsoType: base.load(fromByteOffset: 1, as: UInt8.self),
            headerLength: base.loadLE16(at: 2),
            gsoSize: base.loadLE16(at: 4),
            checksumStart: base.loadLE16(at: 6),
            checksumOffset: base.loadLE16(at: 8))
    }

    /// Writes the 10 bytes at `base`.
    @inlinable
    public func write(to base: UnsafeMutableRawPointer) {
        base.storeBytes(of: flags, toByteOffset: 0, as: UInt8.self)
        base.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        base.storeLE16(headerLength, at: 2)
        base.storeLE16(gsoSize, at: 4)
        base.storeLE16(checksumStart, at: 6)
        base.storeLE16(checksumOffset, at: 8)
    }

    /// Writes the 10 bytes at the start of `bytes`, which must hold at least 10.
    @inlinable
    public func write(into bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count >= Self.size, "VirtioNetHeader written into fewer than 10 bytes")
        write(to: bytes.baseAddress!)
    }

    /// ``gsoType`` without the ``gsoECN`` bit.
    @inlinable
    public var gsoKind: UInt8 { gsoType & ~Self.gsoECN }

    /// Whether ``flagNeedsChecksum`` is set.
    @inlinable
    public var needsChecksum: Bool { flags & Self.flagNeedsChecksum != 0 }
}
