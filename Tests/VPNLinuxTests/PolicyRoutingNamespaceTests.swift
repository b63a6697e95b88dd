// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Testing
import VPNBasics
import VPNLinux

/// Policy-routing rules, `unreachable` routes and socket marks through rtnetlink, each test in a
/// network namespace of its own (nothing changes in the root namespace), cross-checked with
/// iproute2's JSON output.
@Suite(.enabled(if: Privilege.shouldRun, Privilege.reason))
struct PolicyRoutingNamespaceTests {
    init() throws {
        try #require(Privilege.available, "root and /dev/net/tun are required under CI=true")
    }

    static let marked = NetlinkRule(ipv4: true, priority: 32765, table: 51820, firewallMark: 51820, inverted: true)
    static let suppress = NetlinkRule(ipv4: true, priority: 32764, table: 254, suppressPrefixLength: 0)

    /// `ip -j rule show` (IPv4 or IPv6) as (priority, the rest) pairs, without the kernel's own three rules.
    static func rules(_ ns: TestNamespace, ipv4: Bool) throws -> [[String: String]] {
        try ns.ipJSON([ipv4 ? "-4" : "-6", "rule", "show"]).compactMap { rule in
            let priority = rule["priority"] as? Int ?? -1
            guard ![0, 32766, 32767].contains(priority) else { return nil }
            var out: [String: String] = ["priority": String(priority)]
            for (key, value) in rule where key != "priority" { out[key] = "\(value)" }
            return out
        }
    }

    @Test func rulesAndUnreachableRoutesAreAddedAndRemoved() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            try checks.expect(!(try netlink.tableHasRoutes(51820)))
            try netlink.addRule(Self.suppress)
            try netlink.addRule(Self.marked)
            try netlink.addRule(NetlinkRule(ipv4: false, priority: 32765, table: 51820, firewallMark: 51820, inverted: true))
            try netlink.addUnreachableDefaultRoute(ipv4: false, table: 51820)
            try netlink.addUnreachableDefaultRoute(ipv4: true, table: 70000)
            try checks.expect(try netlink.tableHasRoutes(51820))
            try checks.expect(try netlink.tableHasRoutes(70000))
            try checks.expect(!(try netlink.tableHasRoutes(51821)))
            // The same rule twice is two entries (two interfaces' full tunnels); each delete takes one.
            try netlink.addRule(Self.suppress)
        }
        let v4 = try Self.rules(ns, ipv4: true)
        #expect(v4.count == 3, "\(v4)")
        #expect(v4.filter { $0["priority"] == "32764" && $0["table"] == "main" && $0["suppress_prefixlen"] == "0" }.count == 2, "\(v4)")
        #expect(v4.contains { $0["priority"] == "32765" && $0["not"] != nil && $0["fwmark"] == "0xca6c" && $0["table"] == "51820" }, "\(v4)")
        let v6 = try Self.rules(ns, ipv4: false)
        #expect(v6.count == 1 && v6[0]["fwmark"] == "0xca6c" && v6[0]["not"] != nil, "\(v6)")
        let routes6 = try ns.ipJSON(["-6", "route", "show", "table", "51820"])
        #expect(routes6.count == 1 && routes6[0]["type"] as? String == "unreachable" && routes6[0]["dst"] as? String == "default", "\(routes6)")
        let routes4 = try ns.ipJSON(["-4", "route", "show", "table", "70000"])
        #expect(routes4.count == 1 && routes4[0]["type"] as? String == "unreachable", "\(routes4)")

        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.deleteRule(Self.suppress)
            try netlink.deleteRule(Self.suppress)
            try netlink.deleteRule(Self.marked)
            try netlink.deleteRule(NetlinkRule(ipv4: false, priority: 32765, table: 51820, firewallMark: 51820, inverted: true))
            try netlink.deleteUnreachableDefaultRoute(ipv4: false, table: 51820)
            try netlink.deleteUnreachableDefaultRoute(ipv4: true, table: 70000)
            try checks.expect(!(try netlink.tableHasRoutes(51820)))
            do {
                try netlink.deleteRule(Self.marked)
                checks.fail("deleting a missing rule succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == ENOENT)
                checks.expect(
                    error.description.hasPrefix("netlink RTM_DELRULE 32765: not from all fwmark 0xca6c lookup 51820 (IPv4): no such file or directory (ENOENT); no such rule"),
                    "\(error)")
            }
            do {
                try netlink.deleteUnreachableDefaultRoute(ipv4: false, table: 51820)
                checks.fail("deleting a missing unreachable route succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == ESRCH || error.errno == ENOENT, "\(error)")
            }
        }
        #expect(try Self.rules(ns, ipv4: true).isEmpty)
        #expect(try Self.rules(ns, ipv4: false).isEmpty)
        #expect(try ns.ipJSON(["-6", "route", "show", "table", "51820"]).isEmpty)
    }

    @Test func tcpSocketsCarryTheirMarkFromTheStart() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        try await ns.run { checks in
            try Netlink().setLink("lo", up: true)
            func mark(_ fd: Int32) -> UInt32 {
                var value: UInt32 = 0
                var length = socklen_t(4)
                getsockopt(fd, SOL_SOCKET, SO_MARK, &value, &length)
                return value
            }
            let listener = try TCPListener(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0), firewallMark: 0xCA6C)
            checks.expect(mark(listener.pollHandle.rawValue) == 0xCA6C)
            let dialer = TCPDialer(firewallMark: 0x51)
            let client = try dialer.connect(to: listener.localEndpoint)
            checks.expect(mark(client.pollHandle.rawValue) == 0x51)
            var accepted: TCPConnection?
            for _ in 0..<200 where accepted == nil {
                accepted = try listener.acceptConnection()
                if accepted == nil { usleep(5000) }
            }
            guard let accepted else { return checks.fail("no connection accepted") }
            checks.expect(accepted.firewallMark == 0xCA6C)
            let unmarked = try TCPConnection.connect(to: listener.localEndpoint)
            checks.expect(unmarked.firewallMark == 0)
        }
    }
}
