// SPDX-License-Identifier: MIT

/// Which kernel offloads the composition root asks the Linux layer for; each can be turned off on
/// its own (e.g. by `--no-gso`). Every offload the kernel refuses falls back by itself; these
/// switches only stop vpnd from asking.
///
/// The default (``disabled``) asks for nothing, so devices and sockets behave as without offloads.
public struct LinuxOffloadOptions: Hashable, Sendable, CustomStringConvertible {
    /// Open the tun/tap device with a virtio-net header and ``TunOffloads/all``
    /// (`IFF_VNET_HDR`, `TUNSETOFFLOAD`).
    public var tunVnetHeader: Bool
    /// Send UDP batches as segmented super-datagrams (`UDP_SEGMENT`).
    public var udpGSO: Bool
    /// Receive coalesced UDP datagrams (`UDP_GRO`).
    public var udpGRO: Bool

    public init(tunVnetHeader: Bool = false, udpGSO: Bool = false, udpGRO: Bool = false) {
        self.tunVnetHeader = tunVnetHeader
        self.udpGSO = udpGSO
        self.udpGRO = udpGRO
    }

    /// Nothing asked for: plain packets, one datagram per message.
    public static let disabled = LinuxOffloadOptions()
    /// Everything asked for.
    public static let enabled = LinuxOffloadOptions(tunVnetHeader: true, udpGSO: true, udpGRO: true)

    /// The tun offloads to ask for: ``TunOffloads/all`` or none.
    public var tunOffloads: TunOffloads { tunVnetHeader ? .all : [] }

    /// "tun-vnet-hdr gso gro", or "none".
    public var description: String {
        let names = [(tunVnetHeader, "tun-vnet-hdr"), (udpGSO, "gso"), (udpGRO, "gro")].filter(\.0).map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: " ")
    }
}
