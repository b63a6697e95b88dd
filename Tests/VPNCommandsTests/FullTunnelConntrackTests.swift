// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore

/// wg-quick's nftables half of a full tunnel: the text libnftables gets.
@Suite("Full tunnel: conntrack marks and anti-spoofing")
struct FullTunnelConntrackTests {
    @Test func bothFamiliesGetTheMarksTheTunneledOnesTheAntiSpoofRule() {
        let text = FullTunnelConntrack.script(
            interface: "vpnd0", mark: 51820, transport: .udp,
            addresses: [IPPrefix("10.8.0.2/24")!, IPPrefix("fd00:8::2/64")!], tunnelsIPv4: true, tunnelsIPv6: false)
        let lines = text.split(separator: "\n").map(String.init)
        // Each table made afresh in the same transaction, so a crashed vpnd's is replaced.
        #expect(Array(lines.prefix(3)) == ["add table ip vpnd-vpnd0", "delete table ip vpnd-vpnd0", "add table ip vpnd-vpnd0"])
        #expect(lines.contains("add rule ip vpnd-vpnd0 preraw iifname != \"vpnd0\" ip daddr 10.8.0.2 fib saddr type != local drop"))
        #expect(lines.contains("add rule ip vpnd-vpnd0 premangle meta l4proto udp meta mark set ct mark"))
        #expect(lines.contains("add rule ip vpnd-vpnd0 postmangle meta l4proto udp meta mark 51820 ct mark set meta mark"))
        // IPv6 is blocked, not tunneled: marks (its underlay may be IPv6), no anti-spoof rule.
        #expect(lines.contains("add rule ip6 vpnd-vpnd0 premangle meta l4proto udp meta mark set ct mark"))
        #expect(!lines.contains { $0.contains("ip6 vpnd-vpnd0 preraw") })
        #expect(text.hasSuffix("\n"))
    }

    @Test func tcpMarksTCP() {
        let text = FullTunnelConntrack.script(
            interface: "wg1", mark: 0x99, transport: .tcp, addresses: [], tunnelsIPv4: true, tunnelsIPv6: true)
        #expect(text.contains("add rule ip6 vpnd-wg1 postmangle meta l4proto tcp meta mark 153 ct mark set meta mark"))
        #expect(!text.contains("udp") && !text.contains("preraw"))
        #expect(FullTunnelConntrack.removal(interface: "wg1")
            == "add table ip vpnd-wg1\ndelete table ip vpnd-wg1\nadd table ip6 vpnd-wg1\ndelete table ip6 vpnd-wg1\n")
    }
}
