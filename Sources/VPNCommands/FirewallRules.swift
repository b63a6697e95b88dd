// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNLinux

/// The nftables text of vpnd's kill switch and masquerade, and the decoding of what libnftables
/// lists: pure, so each rule is unit-tested without a kernel.
///
/// Everything vpnd puts into nftables lives in one table of its own per interface,
/// `table inet vpnd-IFNAME` (interface names are letters, digits, `_`, `.` and `-`, all of them
/// valid in an nft identifier and in a quoted interface name, with no wildcard). Its chains:
/// `killswitch` (type filter, hook output) and `nat` (type nat, hook postrouting). Each change is
/// one command buffer, so one transaction: a restart replaces a table left behind in the same
/// transaction that builds the new one, with no moment without it.
enum FirewallRules {
    /// The family of vpnd's tables: `inet` covers IPv4 and IPv6 with one set of rules.
    static let family = "inet"
    static let killSwitchChain = "killswitch"
    static let natChain = "nat"

    /// `vpnd-IFNAME`.
    static func tableName(for interface: String) -> String { "vpnd-" + interface }

    /// The interface a table named by ``tableName(for:)`` belongs to; nil for any other name.
    static func interface(ofTable name: String) -> String? {
        guard name.hasPrefix("vpnd-"), name.utf8.count > 5 else { return nil }
        return String(name.dropFirst(5))
    }

    /// What the kill switch lets out besides the tunnel.
    struct KillSwitch: Equatable, Sendable {
        /// The tunnel interface: everything may leave through it.
        var interface: String
        var setting: Config.KillSwitch
        var transport: Config.Transport
        /// The peers' underlay endpoints (resolved addresses), reached with `transport`.
        var peerEndpoints: [Endpoint] = []
        /// Underlay packets from this local port go out (a server's replies to peers that have no
        /// `Endpoint`, and a TCP server's connections); nil for none.
        var localPort: UInt16? = nil
        /// `AllowLAN`: the directly connected subnets, and DHCP; nil without `AllowLAN`.
        var lan: [IPPrefix]? = nil
        /// Packets with this firewall mark go out (vpnd's underlay sockets under `FwMark`); 0 for none.
        var fwMark: UInt32 = 0
    }

    /// One transaction that replaces `table inet vpnd-IFNAME` (whatever an earlier vpnd left
    /// there) with one holding only the kill switch.
    static func installKillSwitch(_ k: KillSwitch) -> String {
        let table = tableName(for: k.interface)
        var rules = [
            "type filter hook output priority filter; policy drop;",
            "oifname \"lo\" accept",
            "oifname \"\(k.interface)\" accept",
        ]
        if k.fwMark != 0 { rules.append("meta mark \(hex32(k.fwMark)) accept") }
        let carriers = (k.transport.carriesUDP ? ["udp"] : []) + (k.transport.carriesTCP ? ["tcp"] : [])
        for l4 in carriers {
            var seen = Set<Endpoint>()
            for endpoint in k.peerEndpoints where seen.insert(endpoint).inserted {
                let address = endpoint.ipAddress
                rules.append("\(address.isIPv4 ? "ip" : "ip6") daddr \(address) \(l4) dport \(endpoint.port) accept")
            }
            if let port = k.localPort, port != 0 { rules.append("\(l4) sport \(port) accept") }
        }
        // IPv6 neighbour discovery: without it not even the underlay's own next hop is reachable.
        rules.append("icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept")
        if let lan = k.lan {
            let v4 = lan.filter(\.address.isIPv4), v6 = lan.filter { !$0.address.isIPv4 }
            if !v4.isEmpty { rules.append("ip daddr { \(v4.map(\.description).joined(separator: ", ")) } accept") }
            if !v6.isEmpty { rules.append("ip6 daddr { \(v6.map(\.description).joined(separator: ", ")) } accept") }
            rules.append("udp sport 68 udp dport 67 accept")  // DHCPv4 (broadcast too)
            rules.append("udp sport 546 udp dport 547 accept")  // DHCPv6 (to ff02::1:2)
        }
        rules.append("counter drop")
        let kept = k.setting == .persistent ? "kept until vpnd down \(k.interface)" : "removed when vpnd stops"
        return replaceTable(
            table, comment: "vpnd \(k.interface): kill switch, \(kept)",
            chains: [(killSwitchChain, rules)])
    }

    /// What masquerades the tunnel's traffic out of an interface.
    struct Masquerade: Equatable, Sendable {
        var interface: String
        /// `Masquerade = IFNAME`.
        var outInterface: String
        /// The kill switch of the same run holds the table: add a chain to it (and remove only
        /// that chain) instead of replacing the table.
        var sharesTable: Bool
    }

    static func installMasquerade(_ m: Masquerade) -> String {
        let table = tableName(for: m.interface)
        let rules = [
            "type nat hook postrouting priority srcnat; policy accept;",
            "iifname \"\(m.interface)\" oifname \"\(m.outInterface)\" masquerade",
        ]
        guard m.sharesTable else {
            return replaceTable(table, comment: "vpnd \(m.interface): masquerade, removed when vpnd stops", chains: [(natChain, rules)])
        }
        return "add chain \(family) \(table) \(natChain) { \(rules[0]) }\n"
            + "add rule \(family) \(table) \(natChain) \(rules[1])\n"
    }

    static func removeMasquerade(_ m: Masquerade) -> String {
        m.sharesTable ? "delete chain \(family) \(tableName(for: m.interface)) \(natChain)\n" : removeTable(interface: m.interface)
    }

    /// Deletes `table inet vpnd-IFNAME` if it exists, as one transaction: `add table` of an
    /// existing table changes nothing, and then `delete` always has a table to delete (nft 1.0.8's
    /// `destroy` does the same, and Debian 12 has 1.0.6).
    static func removeTable(interface: String) -> String {
        let table = tableName(for: interface)
        return "add table \(family) \(table)\ndelete table \(family) \(table)\n"
    }

    private static func replaceTable(_ table: String, comment: String, chains: [(String, [String])]) -> String {
        var text = "add table \(family) \(table)\ndelete table \(family) \(table)\ntable \(family) \(table) {\n"
        text += "\tcomment \"\(comment)\"\n"
        for (name, rules) in chains {
            text += "\tchain \(name) {\n"
            for rule in rules { text += "\t\t\(rule)\n" }
            text += "\t}\n"
        }
        return text + "}\n"
    }

    private static func hex32(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    // MARK: - AllowLAN

    /// The directly connected subnets among `routes` (the main table): unicast routes without a
    /// gateway, of scope link for IPv4 (IPv6 routes have no link scope: any without a gateway is
    /// on-link), through an interface other than those in `excluded` (the tunnel, `lo`). Never a
    /// default route. Host bits cleared, prefixes inside another one dropped, sorted.
    static func lanPrefixes(from routes: [KernelRoute], excludingInterfaces excluded: Set<Int32>) -> [IPPrefix] {
        var prefixes: [IPPrefix] = []
        for route in routes {
            guard route.type == KernelRoute.unicast, !route.hasGateway, route.destination.length > 0,
                route.interfaceIndex != 0, !excluded.contains(route.interfaceIndex)
            else { continue }
            if route.destination.isIPv4 && route.scope != KernelRoute.scopeLink { continue }
            guard let address = IPAddress(bytes: route.destination.bytes),
                let prefix = IPPrefix(address: address, length: route.destination.length)?.masked
            else { continue }
            prefixes.append(prefix)
        }
        let unique = Set(prefixes)
        let outermost = unique.filter { prefix in
            !unique.contains { other in
                other != prefix && other.address.isIPv4 == prefix.address.isIPv4 && other.length < prefix.length
                    && other.contains(prefix.address)
            }
        }
        return outermost.sorted()
    }

    // MARK: - What libnftables lists (JSON)

    /// The tables in the JSON of `list tables`; nil when the text is not libnftables' JSON.
    static func tables(fromJSON text: String) -> [(family: String, name: String)]? {
        guard let items = JSONValue.parse(text)?["nftables"]?.arrayValue else { return nil }
        return items.compactMap { item in
            guard let table = item["table"], let family = table["family"]?.stringValue, let name = table["name"]?.stringValue
            else { return nil }
            return (family, name)
        }
    }

    /// The base chains of other tables than vpnd's that hook into forward with policy drop, as
    /// "family table chain", from the JSON of `list chains`; nil when the text is not
    /// libnftables' JSON.
    static func forwardDropChains(fromJSON text: String) -> [String]? {
        guard let items = JSONValue.parse(text)?["nftables"]?.arrayValue else { return nil }
        return items.compactMap { item in
            guard let chain = item["chain"], chain["hook"]?.stringValue == "forward", chain["policy"]?.stringValue == "drop",
                let family = chain["family"]?.stringValue, let table = chain["table"]?.stringValue,
                let name = chain["name"]?.stringValue, interface(ofTable: table) == nil || family != self.family
            else { return nil }
            return "\(family) \(table) \(name)"
        }
    }
}
