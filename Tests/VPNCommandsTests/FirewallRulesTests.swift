// SPDX-License-Identifier: MIT
import Logging
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore
import VPNCrypto
import VPNLinux

/// The kill switch's and masquerade's nftables text, the AllowLAN subnets, the decoding of what
/// libnftables lists, the forwarding record, and which host steps a configuration gets.
@Suite("Firewall rules")
struct FirewallRulesTests {
    static let server = Endpoint(ipv4: 198, 18, 0, 1, port: 51820)

    @Test("a UDP client's kill switch: one transaction that replaces the table; lo, the tunnel, the server's address and port, IPv6 neighbour discovery, then drop")
    func udpClient() {
        let rules = FirewallRules.KillSwitch(interface: "vpn0", setting: .on, transport: .udp, peerEndpoints: [Self.server])
        #expect(
            FirewallRules.installKillSwitch(rules) == """
                add table inet vpnd-vpn0
                delete table inet vpnd-vpn0
                table inet vpnd-vpn0 {
                \tcomment "vpnd vpn0: kill switch, removed when vpnd stops"
                \tchain killswitch {
                \t\ttype filter hook output priority filter; policy drop;
                \t\toifname "lo" accept
                \t\toifname "vpn0" accept
                \t\tip daddr 198.18.0.1 udp dport 51820 accept
                \t\ticmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
                \t\tcounter drop
                \t}
                }

                """)
    }

    @Test("a server's peers without Endpoint: its replies from ListenPort; TCP: tcp; IPv6 endpoints: ip6; each endpoint once; FwMark; persistent says so")
    func variants() {
        var rules = FirewallRules.KillSwitch(interface: "wg.1", setting: .persistent, transport: .udp, localPort: 51820)
        var text = FirewallRules.installKillSwitch(rules)
        #expect(text.contains("\t\tudp sport 51820 accept\n"))
        #expect(!text.contains("daddr"))
        #expect(text.contains("comment \"vpnd wg.1: kill switch, kept until vpnd down wg.1\""))
        #expect(text.contains("oifname \"wg.1\" accept"))

        let v6 = Endpoint(IPAddress("2001:db8::7")!, port: 443)
        rules = FirewallRules.KillSwitch(
            interface: "vpn0", setting: .on, transport: .tcp, peerEndpoints: [v6, Self.server, v6], fwMark: 0xca6c)
        text = FirewallRules.installKillSwitch(rules)
        #expect(text.contains("\t\tip6 daddr 2001:db8::7 tcp dport 443 accept\n"))
        #expect(text.contains("\t\tip daddr 198.18.0.1 tcp dport 51820 accept\n"))
        #expect(text.split(separator: "\n").filter { $0.contains("2001:db8::7") }.count == 1, "each endpoint once")
        #expect(text.contains("\t\tmeta mark 0x0000ca6c accept\n"))
        #expect(!text.contains("sport"))
        #expect(!text.contains("udp"))
        // The drop is last, after every accept.
        #expect(text.hasSuffix("\t\tcounter drop\n\t}\n}\n"))
    }

    @Test("AllowLAN: the subnets by family, and DHCPv4 and DHCPv6; an empty LAN still allows DHCP")
    func allowLAN() {
        var rules = FirewallRules.KillSwitch(interface: "vpn0", setting: .on, transport: .udp, peerEndpoints: [Self.server])
        rules.lan = [IPPrefix("192.168.1.0/24")!, IPPrefix("10.0.0.0/8")!, IPPrefix("fd00:1::/64")!]
        let text = FirewallRules.installKillSwitch(rules)
        #expect(text.contains("\t\tip daddr { 192.168.1.0/24, 10.0.0.0/8 } accept\n"))
        #expect(text.contains("\t\tip6 daddr { fd00:1::/64 } accept\n"))
        #expect(text.contains("\t\tudp sport 68 udp dport 67 accept\n\t\tudp sport 546 udp dport 547 accept\n\t\tcounter drop\n"))
        rules.lan = []
        let empty = FirewallRules.installKillSwitch(rules)
        #expect(!empty.contains("ip daddr {") && !empty.contains("ip6 daddr {"))
        #expect(empty.contains("udp sport 68 udp dport 67 accept"))
        rules.lan = nil
        #expect(!FirewallRules.installKillSwitch(rules).contains("sport 68"))
    }

    @Test("masquerade: its own table, or a chain added to the kill switch's and removed alone")
    func masquerade() {
        var m = FirewallRules.Masquerade(interface: "vpn0", outInterface: "eth0", sharesTable: false)
        #expect(
            FirewallRules.installMasquerade(m) == """
                add table inet vpnd-vpn0
                delete table inet vpnd-vpn0
                table inet vpnd-vpn0 {
                \tcomment "vpnd vpn0: masquerade, removed when vpnd stops"
                \tchain nat {
                \t\ttype nat hook postrouting priority srcnat; policy accept;
                \t\tiifname "vpn0" oifname "eth0" masquerade
                \t}
                }

                """)
        #expect(FirewallRules.removeMasquerade(m) == "add table inet vpnd-vpn0\ndelete table inet vpnd-vpn0\n")
        m.sharesTable = true
        #expect(
            FirewallRules.installMasquerade(m)
                == "add chain inet vpnd-vpn0 nat { type nat hook postrouting priority srcnat; policy accept; }\n"
                + "add rule inet vpnd-vpn0 nat iifname \"vpn0\" oifname \"eth0\" masquerade\n")
        #expect(FirewallRules.removeMasquerade(m) == "delete chain inet vpnd-vpn0 nat\n")
    }

    @Test("table names map to their interface and back; other names are not vpnd's")
    func tableNames() {
        #expect(FirewallRules.tableName(for: "vpn0") == "vpnd-vpn0")
        #expect(FirewallRules.interface(ofTable: "vpnd-a-nat") == "a-nat")
        #expect(FirewallRules.interface(ofTable: "vpnd-") == nil)
        #expect(FirewallRules.interface(ofTable: "filter") == nil)
    }

    static func route(
        _ prefix: String, _ index: Int32, scope: UInt8 = 0, type: UInt8 = KernelRoute.unicast, gateway: Bool = false
    ) -> KernelRoute {
        KernelRoute(destination: NetlinkPrefix(prefix)!, interfaceIndex: index, scope: scope, type: type, hasGateway: gateway)
    }

    @Test("AllowLAN's subnets: on-link unicast routes of the other interfaces; no default, gateway, tunnel, lo or local route; inner prefixes folded; host bits cleared")
    func lanPrefixes() {
        let link = KernelRoute.scopeLink
        let routes = [
            Self.route("192.168.1.0/24", 2, scope: link),
            Self.route("0.0.0.0/0", 2, gateway: true),  // default via the router
            Self.route("0.0.0.0/0", 3, scope: link),  // default dev ppp0 scope link: not a LAN
            Self.route("10.8.0.0/24", 7, scope: link),  // the tunnel
            Self.route("127.0.0.0/8", 1, scope: 254, type: 2),  // local, through lo
            Self.route("172.16.5.9/16", 3, scope: link),  // host bits
            Self.route("172.16.7.0/24", 3, scope: link),  // inside 172.16.0.0/16
            Self.route("203.0.113.0/24", 2, gateway: true),  // via a gateway: not directly connected
            Self.route("198.51.100.0/24", 2),  // scope universe: through a router for IPv4
            Self.route("192.0.2.255/32", 2, scope: link, type: 3),  // broadcast
            Self.route("2001:db8:1::/64", 2),
            Self.route("fe80::/64", 2),
            Self.route("::/0", 2, gateway: true),
            Self.route("2001:db8:2::/48", 2, gateway: true),
            Self.route("fd00:8::/64", 7),  // the tunnel
        ]
        let prefixes = FirewallRules.lanPrefixes(from: routes, excludingInterfaces: [7, 1])
        #expect(prefixes.map(\.description) == ["172.16.0.0/16", "192.168.1.0/24", "2001:db8:1::/64", "fe80::/64"])
        #expect(FirewallRules.lanPrefixes(from: [], excludingInterfaces: []).isEmpty)
    }

    static let tablesJSON = """
        {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, \
        {"table": {"family": "inet", "name": "vpnd-vpn0", "handle": 2}}, {"table": {"family": "ip", "name": "nat", "handle": 3}}]}
        """

    @Test("the tables in libnftables' JSON; anything else is nil")
    func tablesFromJSON() {
        let tables = FirewallRules.tables(fromJSON: Self.tablesJSON)
        #expect(tables?.map { "\($0.family) \($0.name)" } == ["inet vpnd-vpn0", "ip nat"])
        #expect(FirewallRules.tables(fromJSON: "{\"nftables\": []}")?.isEmpty == true)
        #expect(FirewallRules.tables(fromJSON: "table inet vpnd-vpn0 {") == nil)
        #expect(FirewallRules.tables(fromJSON: "{\"other\": []}") == nil)
        #expect(FirewallRules.tables(fromJSON: "") == nil)
    }

    @Test("forward chains that drop by default, other tables' only")
    func forwardDrops() {
        let json = """
            {"nftables": [{"metainfo": {"json_schema_version": 1}}, \
            {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, \
            {"chain": {"family": "ip", "table": "other", "name": "fw", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, \
            {"chain": {"family": "inet", "table": "vpnd-vpn0", "name": "x", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, \
            {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 3, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, \
            {"chain": {"family": "inet", "table": "filter", "name": "regular", "handle": 4}}]}
            """
        #expect(FirewallRules.forwardDropChains(fromJSON: json) == ["inet filter forward"])
        #expect(FirewallRules.forwardDropChains(fromJSON: "nonsense") == nil)
    }

    @Test("the JSON parser: values, escapes, surrogate pairs, numbers; malformed text, trailing text and deep nesting are nil")
    func jsonParser() {
        let value = JSONValue.parse(#" { "a" : [1, -2.5e1, true, false, null, "x\"\\\/\n\u00e9\ud83d\ude00"], "b": {} } "#)
        guard case .array(let items)? = value?["a"] else {
            Issue.record("no array: \(String(describing: value))")
            return
        }
        #expect(items.count == 6)
        if case .integer(1) = items[0] {} else { Issue.record("1 is \(items[0])") }
        if case .double(let d) = items[1] { #expect(d == -25) } else { Issue.record("-2.5e1 is \(items[1])") }
        if case .bool(true) = items[2] {} else { Issue.record("true is \(items[2])") }
        if case .null = items[4] {} else { Issue.record("null is \(items[4])") }
        #expect(items[5].stringValue == "x\"\\/\né😀")
        if case .object(let members)? = value?["b"] { #expect(members.isEmpty) } else { Issue.record("b is not {}") }
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\u{01}\"", "\"\\ud83d\"", "[1] x", "tru", "{\"a\":1,}", "-"] {
            #expect(JSONValue.parse(bad) == nil, "\(bad) parsed")
        }
        #expect(JSONValue.parse(String(repeating: "[", count: 70) + String(repeating: "]", count: 70)) == nil)
        #expect(JSONValue.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10)) != nil)
    }

    @Test("the forwarding record keeps only the two forwarding sysctls with small numbers")
    func forwardingRecord() {
        let text = "net.ipv4.ip_forward=0\nnet.ipv6.conf.all.forwarding=1\nkernel.core_pattern=|/bin/sh\nnet.ipv4.ip_forward6=1\nnet.ipv6.conf.all.forwarding=1x\n"
        let values = ForwardingRecord.parse(text)
        #expect(values == ["net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "1"])
        #expect(ForwardingRecord.text(values) == "net.ipv4.ip_forward=0\nnet.ipv6.conf.all.forwarding=1\n")
        #expect(ForwardingRecord.parse("net.ipv4.ip_forward=1000\nnet.ipv4.ip_forward=\n").isEmpty)
    }

    static func plan(role: Config.Role = .client, transport: Config.Transport = .udp, peers: [PeerConfiguration]) -> LaunchPlan {
        let tunnel = TunnelConfiguration(mode: .tun, privateKey: SecretKey([UInt8](repeating: 5, count: 32))!, mtu: 1420, peers: peers)
        return LaunchPlan(
            name: "vpn0", tunnel: tunnel, transport: transport, role: role, listenPort: role == .server ? 51820 : 0,
            addresses: [IPPrefix("10.8.0.2/24")!], routes: [], bridge: nil, setUpInterface: true, offloads: .enabled,
            runDirectory: "/nonexistent", account: nil)
    }

    static let peerKey = Bytes32([UInt8](repeating: 1, count: 32))!

    @Test("the steps a configuration gets, in order; a server's endpoint-less peers open its ListenPort")
    func stepsInOrder() throws {
        let logger = Logger(label: "test")
        var host = Config.HostSettings()
        host.killSwitch = .on
        host.forward = true
        host.masquerade = "eth0"
        let server = Self.plan(role: .server, peers: [PeerConfiguration(publicKey: Self.peerKey, allowedIPs: [IPPrefix("fd00::2/128")!])])
        let steps = try FirewallSetup.steps(for: host, interface: "vpn0", plan: server, logger: logger)
        #expect(steps.map(\.name) == ["kill switch", "forwarding", "masquerade"])
        let killSwitch = try #require(steps.first as? KillSwitchStep)
        #expect(killSwitch.rules.localPort == 51820)
        #expect(killSwitch.rules.peerEndpoints.isEmpty)
        #expect((steps.last as? MasqueradeStep)?.rules.sharesTable == true)

        let client = Self.plan(peers: [PeerConfiguration(publicKey: Self.peerKey, endpoint: Self.server)])
        host = Config.HostSettings()
        host.killSwitch = .persistent
        let clientSteps = try FirewallSetup.steps(for: host, interface: "vpn0", plan: client, logger: logger)
        #expect(clientSteps.map(\.name) == ["kill switch", "leftovers of an earlier vpnd"])
        let rules = try #require((clientSteps.first as? KillSwitchStep)?.rules)
        #expect(rules.localPort == nil && rules.peerEndpoints == [Self.server] && rules.lan == nil)

        // Nothing asked: only the check for what an earlier vpnd left.
        let none = try FirewallSetup.steps(for: Config.HostSettings(), interface: "vpn0", plan: client, logger: logger)
        #expect(none.map(\.name) == ["leftovers of an earlier vpnd"])
    }

    @Test("with the kill switch, a reload refuses a new Endpoint or ListenPort (the table lets out the ones vpnd started with); a removed peer is fine")
    func reloadUnderKillSwitch() throws {
        let key = KeyEncoding.encode(SecretKey([UInt8](repeating: 7, count: 32))!)
        let peerA = KeyEncoding.encode(Bytes32([UInt8](repeating: 1, count: 32))!)
        let peerB = KeyEncoding.encode(Bytes32([UInt8](repeating: 2, count: 32))!)
        func config(_ interface: String, _ peers: String, port: Int = 51820) throws -> Config {
            try Config.parse("[Interface]\nPrivateKey = \(key)\nListenPort = \(port)\n\(interface)\n\(peers)", fileName: "k.conf")
        }
        let a = "[Peer]\nPublicKey = \(peerA)\nEndpoint = 198.18.0.1:51820\n"
        let b = "[Peer]\nPublicKey = \(peerB)\nEndpoint = 198.18.0.9:51820\n"
        let old = try config("KillSwitch = on", a + b)
        #expect(throws: Never.self) { try Reloader.checkFixedKeys(old, try config("KillSwitch = on", a)) }
        do {
            try Reloader.checkFixedKeys(old, try config("KillSwitch = on", a.replacingEndpoint("198.18.0.5:51820") + b))
            Issue.record("a moved Endpoint was accepted under the kill switch")
        } catch {
            #expect("\(error)" == "k.conf: Endpoint 198.18.0.5:51820 (with KillSwitch) cannot change while vpnd runs; restart vpnd to apply it")
        }
        do {
            try Reloader.checkFixedKeys(old, try config("KillSwitch = on", a + b, port: 51821))
            Issue.record("a new ListenPort was accepted under the kill switch")
        } catch {
            #expect("\(error)".contains("ListenPort (with KillSwitch)"))
        }
        let free = try config("", a)
        #expect(throws: Never.self) { try Reloader.checkFixedKeys(free, try config("", a.replacingEndpoint("198.18.0.5:51820"))) }
    }

    @Test("refused with one line: a kill switch with Bridge, Masquerade = the tunnel, undo impossible under User with KeepNetAdmin = no")
    func refusals() {
        let logger = Logger(label: "test")
        var plan = Self.plan(peers: [PeerConfiguration(publicKey: Self.peerKey, endpoint: Self.server)])
        var host = Config.HostSettings()
        host.killSwitch = .on
        plan.bridge = "br0"
        #expect(throws: StartupError.self) { try FirewallSetup.steps(for: host, interface: "vpn0", plan: plan, logger: logger) }
        plan.bridge = nil
        plan.account = UserAccount(name: "nobody", uid: 65534, gid: 65534, hasPasswdEntry: true)
        plan.keepNetAdmin = false
        do {
            _ = try FirewallSetup.steps(for: host, interface: "vpn0", plan: plan, logger: logger)
            Issue.record("KillSwitch = on with KeepNetAdmin = no was accepted")
        } catch {
            #expect("\(error)".contains("KeepNetAdmin = yes"))
        }
        host.killSwitch = .persistent  // nothing to undo at stop: allowed
        #expect(throws: Never.self) { try FirewallSetup.steps(for: host, interface: "vpn0", plan: plan, logger: logger) }
        host = Config.HostSettings()
        host.forward = true
        host.masquerade = "vpn0"
        plan.account = nil
        do {
            _ = try FirewallSetup.steps(for: host, interface: "vpn0", plan: plan, logger: logger)
            Issue.record("Masquerade = the tunnel was accepted")
        } catch {
            #expect("\(error)".contains("Masquerade = vpn0 is the tunnel itself"))
        }
    }
}

extension String {
    /// A `[Peer]` block with its Endpoint line replaced.
    fileprivate func replacingEndpoint(_ endpoint: String) -> String {
        split(separator: "\n").map { $0.hasPrefix("Endpoint = ") ? "Endpoint = \(endpoint)" : String($0) }.joined(separator: "\n") + "\n"
    }
}
