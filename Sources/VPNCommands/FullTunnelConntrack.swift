// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// wg-quick's nftables half of a full tunnel, in tables `ip vpnd-IFNAME` and `ip6 vpnd-IFNAME`
/// of vpnd's own (the kill switch's table is `inet vpnd-IFNAME`, another family):
/// - `premangle` (prerouting, priority -150): a packet of vpnd's underlay protocol gets the mark
///   its connection carries (`meta mark set ct mark`), so the reverse-path check of a peer's
///   packet arriving on the underlay looks it up with mark M, as vpnd's own packets go out, and
///   finds the underlay route, not table M's route into the tunnel: strict `rp_filter` (and any
///   rp_filter for a family the full tunnel blocks) accepts it;
/// - `postmangle` (postrouting, priority -150): vpnd's marked packets store their mark in their
///   connection (`ct mark set meta mark`);
/// - `preraw` (prerouting, priority -300): a packet for one of the tunnel's addresses that arrives
///   on another interface from a non-local source is dropped (an attacker on the LAN cannot reach
///   the tunnel's address from outside the tunnel), for each family the tunnel carries.
/// `src_valid_mark`, which the policy-routing step sets, makes IPv4's reverse-path check use the
/// mark.
enum FullTunnelConntrack {
    static func tableName(for interface: String) -> String { "vpnd-" + interface }

    /// One transaction: both tables made afresh (an earlier vpnd's, after a crash, are replaced).
    static func script(
        interface: String, mark: UInt32, transport: Config.Transport, addresses: [IPPrefix], tunnelsIPv4: Bool,
        tunnelsIPv6: Bool
    ) -> String {
        let table = tableName(for: interface)
        let proto = transport == .auto ? "{ tcp, udp }" : transport.rawValue
        let quoted = "\"" + interface + "\""
        var lines: [String] = []
        for (family, ipv4) in [("ip", true), ("ip6", false)] {
            lines += ["add table \(family) \(table)", "delete table \(family) \(table)", "add table \(family) \(table)"]
            let tunneled = ipv4 ? tunnelsIPv4 : tunnelsIPv6
            let own = addresses.filter { $0.address.isIPv4 == ipv4 }
            if tunneled && !own.isEmpty {
                lines.append("add chain \(family) \(table) preraw { type filter hook prerouting priority -300; }")
                for prefix in own {
                    lines.append(
                        "add rule \(family) \(table) preraw iifname != \(quoted) \(family) daddr \(prefix.address) fib saddr type != local drop")
                }
            }
            lines.append("add chain \(family) \(table) premangle { type filter hook prerouting priority -150; }")
            lines.append("add rule \(family) \(table) premangle meta l4proto \(proto) meta mark set ct mark")
            lines.append("add chain \(family) \(table) postmangle { type filter hook postrouting priority -150; }")
            lines.append("add rule \(family) \(table) postmangle meta l4proto \(proto) meta mark \(mark) ct mark set meta mark")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Deletes both tables, whether or not they exist (`add` first makes `delete` never fail).
    static func removal(interface: String) -> String {
        let table = tableName(for: interface)
        return ["ip", "ip6"].map { "add table \($0) \(table)\ndelete table \($0) \(table)\n" }.joined()
    }
}
