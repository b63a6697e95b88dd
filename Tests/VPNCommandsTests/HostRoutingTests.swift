// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore
import VPNCrypto
import VPNLinux
import VPNTesting

/// Table, FwMark and the full tunnel: which routes, rules and marks for which AllowedIPs
/// (``HostRouting/decide(allowedIPs:placement:fwMark:device:freeTable:)``), table names, and the
/// marker file that lists them for crash recovery.
@Suite("Host routing (Table, FwMark, full tunnel)")
struct HostRoutingTests {
    static func prefixes(_ text: String) -> [IPPrefix] { text.split(separator: ",").map { IPPrefix($0.trimmingSpaces)! } }

    static func decide(
        _ allowed: String, placement: RoutePlacement = .main, fwMark: UInt32 = 0, free: UInt32 = 51820
    ) throws -> (HostRouting, asked: Bool) {
        var asked = false
        let routing = try HostRouting.decide(allowedIPs: prefixes(allowed), placement: placement, fwMark: fwMark, device: "vpnd0") {
            asked = true
            return free
        }
        return (routing, asked)
    }

    static func suppress(_ ipv4: Bool) -> HostEntry {
        .rule(NetlinkRule(ipv4: ipv4, priority: 32764, table: 254, suppressPrefixLength: 0))
    }
    static func marked(_ ipv4: Bool, _ table: UInt32) -> HostEntry {
        .rule(NetlinkRule(ipv4: ipv4, priority: 32765, table: table, firewallMark: table, inverted: true))
    }

    @Test("no default route: routes in the main table, no mark, no rules")
    func splitTunnel() throws {
        let (routing, asked) = try Self.decide("10.8.0.0/24, fd00::/64")
        #expect(routing == HostRouting(placement: .main, socketMark: 0, fullTunnel: nil))
        #expect(!asked, "no table is looked for without a full tunnel")
        // FwMark alone only marks the sockets.
        #expect(try Self.decide("10.8.0.0/24", fwMark: 0x1234).0 == HostRouting(placement: .main, socketMark: 0x1234))
    }

    @Test("0.0.0.0/0 alone: IPv4 through table 51820, IPv6 unreachable there; both families get the two rules")
    func ipv4FullTunnel() throws {
        let (routing, asked) = try Self.decide("0.0.0.0/0, 10.9.0.0/16")
        #expect(asked)
        #expect(routing.placement == .main && routing.socketMark == 51820)
        let tunnel = try #require(routing.fullTunnel)
        #expect(tunnel.table == 51820 && tunnel.tunnelsIPv4 && !tunnel.tunnelsIPv6)
        #expect(tunnel.entries == [
            .route(ipv4: true, table: 51820, device: "vpnd0"), .unreachable(ipv4: false, table: 51820),
            Self.suppress(true), Self.marked(true, 51820), Self.suppress(false), Self.marked(false, 51820),
        ])
        #expect(routing.summary?.contains("IPv6 is blocked outside the tunnel (no ::/0 in AllowedIPs)") == true)
    }

    @Test("::/0 alone blocks IPv4; both default routes block nothing")
    func otherFamilies() throws {
        let v6 = try #require(try Self.decide("::/0").0.fullTunnel)
        #expect(v6.entries.prefix(2) == [.unreachable(ipv4: true, table: 51820), .route(ipv4: false, table: 51820, device: "vpnd0")])
        #expect(!v6.tunnelsIPv4 && v6.tunnelsIPv6)
        let both = try Self.decide("0.0.0.0/0, ::/0", free: 51822).0
        #expect(both.socketMark == 51822)
        #expect(both.fullTunnel?.entries == [
            .route(ipv4: true, table: 51822, device: "vpnd0"), .route(ipv4: false, table: 51822, device: "vpnd0"),
            Self.suppress(true), Self.marked(true, 51822), Self.suppress(false), Self.marked(false, 51822),
        ])
        #expect(both.summary?.contains("blocked") == false)
    }

    @Test("FwMark picks the table (no search); a mark of the kernel's tables 253 to 255 is refused")
    func fwMarkIsTheTable() throws {
        let (routing, asked) = try Self.decide("0.0.0.0/0", fwMark: 0xCA6D)
        #expect(!asked && routing.socketMark == 0xCA6D && routing.fullTunnel?.table == 0xCA6D)
        #expect(routing.fullTunnel?.entries.contains(Self.marked(true, 0xCA6D)) == true)
        for mark: UInt32 in [253, 254, 255] {
            #expect(throws: StartupError.self) { try Self.decide("0.0.0.0/0", fwMark: mark) }
        }
        do {
            _ = try Self.decide("0.0.0.0/0", fwMark: 254)
        } catch let error as StartupError {
            #expect(error.description.hasPrefix("FwMark = 254 with 0.0.0.0/0 in AllowedIPs: the full tunnel uses the mark as its routing table, and 254 is the kernel's main table; pick another FwMark"))
        }
    }

    @Test("Table = off or a number: no full tunnel, no rules, the mark only from FwMark")
    func explicitTables() throws {
        #expect(try Self.decide("0.0.0.0/0", placement: .none).0 == HostRouting(placement: .none))
        #expect(try Self.decide("0.0.0.0/0, ::/0", placement: .table(1234), fwMark: 7).0 == HostRouting(placement: .table(1234), socketMark: 7))
    }

    @Test("the first table from 51820 without routes, as wg-quick; none free is one line")
    func freeTable() throws {
        let used: Set<UInt32> = [51820, 51821]
        #expect(try HostRouting.firstFreeTable { used.contains($0) } == 51822)
        #expect(try HostRouting.firstFreeTable { _ in false } == 51820)
        #expect(try HostRouting.firstFreeTable(from: 250, count: 10) { $0 < 253 } == 256, "253 to 255 are never picked")
        #expect(throws: StartupError.self) { try HostRouting.firstFreeTable(count: 4) { _ in true } }
    }

    @Test("which AllowedIPs get a route where Table puts them")
    func routesPerTable() {
        let allowed = Self.prefixes("0.0.0.0/0, 10.8.0.0/24, 10.8.0.7/32, 10.9.0.0/16, ::/0, 10.9.0.0/16")
        let addresses = Self.prefixes("10.8.0.2/24")
        #expect(InterfaceSetup.routesToAdd(allowed, addresses: addresses, placement: .main) == Self.prefixes("10.9.0.0/16"))
        #expect(InterfaceSetup.routesToAdd(allowed, addresses: addresses, placement: .none).isEmpty)
        #expect(
            InterfaceSetup.routesToAdd(allowed, addresses: addresses, placement: .table(1234))
                == Self.prefixes("0.0.0.0/0, 10.8.0.0/24, 10.8.0.7/32, 10.9.0.0/16, ::/0"))
        // Table = main: the default routes too, as wg-quick; not the subnets the kernel routes already.
        #expect(
            InterfaceSetup.routesToAdd(allowed, addresses: addresses, placement: .table(254))
                == Self.prefixes("0.0.0.0/0, 10.9.0.0/16, ::/0"))
    }

    @Test("table names from rt_tables: /etc first, /usr/share as fallback; unknown or reserved is one line")
    func tableNames() throws {
        let etc = "#\n# reserved values\n255\tlocal\n254\tmain\n253 default\n0\tunspec\n200 vpn # ours\n0x10 hexed\n"
        let share = "255 local\n254 main\n201 vendor\n202 vpn\n"
        let files = ["/etc/iproute2/rt_tables": etc, "/usr/share/iproute2/rt_tables": share]
        #expect(RouteTableNames.lookup("vpn", in: etc) == 200)
        #expect(RouteTableNames.lookup("hexed", in: etc) == 16)
        #expect(RouteTableNames.lookup("ours", in: etc) == nil, "a comment names nothing")
        #expect(try RouteTableNames.resolve("vpn", read: { files[$0] }) == 200, "/etc wins")
        #expect(try RouteTableNames.resolve("vendor", read: { files[$0] }) == 201)
        #expect(try RouteTableNames.resolve("vendor", read: { $0.hasPrefix("/usr") ? share : nil }) == 201, "no /etc file")
        #expect(try RouteTableNames.placement(of: .name("vpn"), read: { files[$0] }) == .table(200))
        #expect(try RouteTableNames.placement(of: .off, read: { _ in nil }) == RoutePlacement.none)
        #expect(try RouteTableNames.placement(of: .number(7), read: { _ in nil }) == .table(7))
        do {
            _ = try RouteTableNames.resolve("nosuch", read: { files[$0] })
            Issue.record("an unknown table name was accepted")
        } catch let error as StartupError {
            #expect(
                error.description
                    == "Table = nosuch: no such routing table in /etc/iproute2/rt_tables or /usr/share/iproute2/rt_tables; add a line \"NUMBER nosuch\" to /etc/iproute2/rt_tables or give the table's number")
        }
        do {
            _ = try RouteTableNames.resolve("local", read: { files[$0] })
            Issue.record("the local table was accepted")
        } catch let error as StartupError {
            #expect(error.description.hasPrefix("Table = local is table 255 in /etc/iproute2/rt_tables, which the kernel keeps for itself"))
        }
    }

    @Test("the marker file: exact text, read back to the same entries; a damaged line names itself")
    func marker() throws {
        let entries = try #require(try Self.decide("0.0.0.0/0").0.fullTunnel?.entries)
        let text = HostMarker.encode(entries, interface: "vpnd0")
        #expect(text == """
            # what vpnd installed beside interface vpnd0; it removes this on stop, or at its next start after a crash
            vpnd-host 1
            route ipv4 default table 51820 dev vpnd0
            unreachable ipv6 default table 51820
            rule ipv4 priority 32764 table 254 suppress_prefixlength 0
            rule ipv4 priority 32765 not fwmark 51820 table 51820
            rule ipv6 priority 32764 table 254 suppress_prefixlength 0
            rule ipv6 priority 32765 not fwmark 51820 table 51820

            """)
        #expect(try HostMarker.decode(text) == entries)
        let both = try #require(try Self.decide("::/0, 0.0.0.0/0", fwMark: 0xFFFF_FFFE).0.fullTunnel?.entries)
        #expect(try HostMarker.decode(HostMarker.encode(both, interface: "wg.x-1")) == both)
        #expect(try HostMarker.decode("vpnd-host 1\n").isEmpty)
        #expect(throws: HostMarker.Damage(line: 3, reason: "\"rule ipv4 priority 32765 fwmark x table 1\" is not an entry")) {
            try HostMarker.decode("# c\nvpnd-host 1\nrule ipv4 priority 32765 fwmark x table 1\n")
        }
        #expect(throws: HostMarker.Damage(line: 1, reason: "the first entry is not \"vpnd-host 1\"")) {
            try HostMarker.decode("route ipv4 default table 1 dev vpnd0\n")
        }
        #expect(throws: HostMarker.Damage(line: 1, reason: "no \"vpnd-host 1\" line")) { try HostMarker.decode("# only\n") }
        for bad in [
            "route ipv4 default table 1 dev", "route ipv5 default table 1 dev x", "unreachable ipv6 default table",
            "rule ipv4 priority 1 table 2 extra", "rule ipv4 priority 1 not fwmark 2", "route ipv4 default table 1 dev a/b",
        ] {
            #expect(throws: HostMarker.Damage.self, "\(bad)") { try HostMarker.decode("vpnd-host 1\n\(bad)\n") }
        }
    }

    @Test("a reload refuses adding or removing a default route under Table = auto, and a Table or FwMark change")
    func reloadKeepsTheFullTunnel() throws {
        var entropy = SeededEntropy(seed: 14)
        let key = KeyEncoding.encode(X25519.generatePrivateKey(using: &entropy))
        let peer = KeyEncoding.encode(X25519.publicKey(for: X25519.generatePrivateKey(using: &entropy)))
        func config(_ interface: String, _ allowed: String) throws -> Config {
            try Config.parse("[Interface]\nPrivateKey = \(key)\n\(interface)[Peer]\nPublicKey = \(peer)\nAllowedIPs = \(allowed)\n", fileName: "t.conf")
        }
        let split = try config("", "10.0.0.0/8")
        let full = try config("", "0.0.0.0/0")
        #expect(throws: StartupError.self) { try Reloader.checkFixedKeys(split, full) }
        #expect(throws: StartupError.self) { try Reloader.checkFixedKeys(full, split) }
        do {
            try Reloader.checkFixedKeys(full, try config("", "0.0.0.0/0, ::/0"))
            Issue.record("adding ::/0 to a full tunnel was accepted")
        } catch let error as StartupError {
            #expect(error.description == "t.conf: AllowedIPs 0.0.0.0/0 or ::/0 (the full tunnel's policy routing) cannot change while vpnd runs; restart vpnd to apply it")
        }
        try Reloader.checkFixedKeys(full, try config("", "0.0.0.0/0, 10.0.0.0/8"))
        // Table = off routes nothing, so a default route may come and go there.
        try Reloader.checkFixedKeys(try config("Table = off\n", "10.0.0.0/8"), try config("Table = off\n", "0.0.0.0/0"))
        #expect(throws: StartupError.self) { try Reloader.checkFixedKeys(full, try config("FwMark = 7\n", "0.0.0.0/0")) }
        #expect(throws: StartupError.self) { try Reloader.checkFixedKeys(full, try config("Table = 7\n", "0.0.0.0/0")) }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
