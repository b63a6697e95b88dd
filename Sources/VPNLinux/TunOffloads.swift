// SPDX-License-Identifier: MIT
import CLinuxShims

/// Offloads a tun or tap device can hand to vpnd: the kernel then passes super-packets of up to
/// 64 KiB and packets with unfinished checksums, each behind a 10-byte virtio-net header.
///
/// The raw values are the kernel's `TUN_F_*` bits for `ioctl(TUNSETOFFLOAD)`. ``tso4``, ``tso6``,
/// ``uso4`` and ``uso6`` only take effect together with ``csum``; ``uso4`` and ``uso6`` only
/// together (Linux 6.2 and later).
public struct TunOffloads: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Packets may carry a partial checksum (`TUN_F_CSUM`, virtio `NEEDS_CSUM`).
    public static let csum = TunOffloads(rawValue: UInt32(VPND_TUN_F_CSUM))
    /// TCP/IPv4 segmentation offload: super-packets of gso_type `TCPV4` (`TUN_F_TSO4`).
    public static let tso4 = TunOffloads(rawValue: UInt32(VPND_TUN_F_TSO4))
    /// TCP/IPv6 segmentation offload: super-packets of gso_type `TCPV6` (`TUN_F_TSO6`).
    public static let tso6 = TunOffloads(rawValue: UInt32(VPND_TUN_F_TSO6))
    /// UDP/IPv4 segmentation offload: super-packets of gso_type `UDP_L4` (`TUN_F_USO4`).
    public static let uso4 = TunOffloads(rawValue: UInt32(VPND_TUN_F_USO4))
    /// UDP/IPv6 segmentation offload: super-packets of gso_type `UDP_L4` (`TUN_F_USO6`).
    public static let uso6 = TunOffloads(rawValue: UInt32(VPND_TUN_F_USO6))

    /// Everything vpnd can handle: checksum, TSO and USO for IPv4 and IPv6.
    public static let all: TunOffloads = [.csum, .tso4, .tso6, .uso4, .uso6]
    /// The TCP offloads: what kernels before 6.2 accept.
    public static let tcp: TunOffloads = [.csum, .tso4, .tso6]

    /// The flags in kernel order, e.g. "csum tso4 tso6 uso4 uso6"; "none" when empty.
    public var description: String {
        let names: [(TunOffloads, String)] = [
            (.csum, "csum"), (.tso4, "tso4"), (.tso6, "tso6"), (.uso4, "uso4"), (.uso6, "uso6"),
        ]
        let present = names.filter { contains($0.0) }.map(\.1)
        return present.isEmpty ? "none" : present.joined(separator: " ")
    }

    /// The set the kernel can accept as asked: segmentation offloads imply ``csum``, and USO needs
    /// both ``uso4`` and ``uso6`` (a lone one is dropped).
    var normalized: TunOffloads {
        var flags = self
        if !flags.intersection([.tso4, .tso6, .uso4, .uso6]).isEmpty { flags.insert(.csum) }
        if flags.contains(.uso4) != flags.contains(.uso6) { flags.subtract([.uso4, .uso6]) }
        return flags
    }

    /// The sets to try in order: as asked, then without USO, then checksum only.
    var fallbackChain: [TunOffloads] {
        let asked = normalized
        var chain: [TunOffloads] = []
        for candidate in [asked, asked.subtracting([.uso4, .uso6]), asked.intersection(.csum)]
        where !candidate.isEmpty && !chain.contains(candidate) {
            chain.append(candidate)
        }
        return chain
    }
}
