// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics

/// A policy-routing rule as `ip rule` shows it, limited to the selectors vpnd uses: "look up
/// `table` (for packets whose fwmark is, or with ``inverted`` is not, ``firewallMark``), ignoring
/// routes of prefix length ``suppressPrefixLength`` or shorter found there".
///
/// `ip -4 rule add not fwmark 51820 table 51820 priority 32765` is
/// `NetlinkRule(ipv4: true, priority: 32765, table: 51820, firewallMark: 51820, inverted: true)`.
public struct NetlinkRule: Hashable, Sendable, CustomStringConvertible {
    /// IPv4 (`ip -4 rule`) or IPv6 (`ip -6 rule`).
    public var ipv4: Bool
    /// FRA_PRIORITY: lower numbers are consulted first.
    public var priority: UInt32
    /// FRA_TABLE: the table to look up.
    public var table: UInt32
    /// FRA_FWMARK with a full mask: only packets with this mark (nil: every packet).
    public var firewallMark: UInt32?
    /// FIB_RULE_INVERT: only packets that do not match the selectors.
    public var inverted: Bool
    /// FRA_SUPPRESS_PREFIXLEN: a route found with a prefix this long or shorter is ignored, and
    /// the next rule is tried (0: the default route is ignored).
    public var suppressPrefixLength: UInt32?

    public init(
        ipv4: Bool, priority: UInt32, table: UInt32, firewallMark: UInt32? = nil, inverted: Bool = false,
        suppressPrefixLength: UInt32? = nil
    ) {
        self.ipv4 = ipv4
        self.priority = priority
        self.table = table
        self.firewallMark = firewallMark
        self.inverted = inverted
        self.suppressPrefixLength = suppressPrefixLength
    }

    /// As `ip rule` lists it: "32765: not from all fwmark 0xca6c lookup 51820 (IPv4)".
    public var description: String {
        var text = "\(priority): \(inverted ? "not " : "")from all"
        if let firewallMark { text += " fwmark 0x\(String(firewallMark, radix: 16))" }
        text += " lookup \(table == RouteNetlink.mainTable ? "main" : String(table))"
        if let suppressPrefixLength { text += " suppress_prefixlength \(suppressPrefixLength)" }
        return text + (ipv4 ? " (IPv4)" : " (IPv6)")
    }
}

extension Netlink {
    // MARK: - Rules

    /// Adds `rule`. An identical rule may exist already (another interface's): the kernel then
    /// keeps both, and ``deleteRule(_:)`` removes one of them, so each owner removes its own.
    public func addRule(_ rule: NetlinkRule) throws(IOError) {
        try changeRule(RouteNetlink.newRule, rule, flags: RouteNetlink.request | RouteNetlink.ack | RouteNetlink.create)
    }

    /// Deletes one rule that matches `rule` (ENOENT when there is none).
    public func deleteRule(_ rule: NetlinkRule) throws(IOError) {
        try changeRule(RouteNetlink.delRule, rule, flags: RouteNetlink.request | RouteNetlink.ack)
    }

    private func changeRule(_ type: UInt16, _ rule: NetlinkRule, flags: UInt16) throws(IOError) {
        var message = NetlinkMessage(type: type, flags: flags)
        // fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action; flags.
        message.append(bytes: [
            UInt8(rule.ipv4 ? AF_INET : AF_INET6), 0, 0, 0, rule.table < 256 ? UInt8(rule.table) : 0, 0, 0,
            RouteNetlink.ruleActionToTable,
        ])
        message.append(rule.inverted ? RouteNetlink.ruleInvert : 0)
        message.appendAttribute(RouteNetlink.fraPriority, rule.priority)
        message.appendAttribute(RouteNetlink.fraTable, rule.table)
        if let mark = rule.firewallMark {
            message.appendAttribute(RouteNetlink.fraFirewallMark, mark)
            message.appendAttribute(RouteNetlink.fraFirewallMask, UInt32.max)
        }
        if let length = rule.suppressPrefixLength {
            message.appendAttribute(RouteNetlink.fraSuppressPrefixLength, length)
        }
        try acknowledge(&message, subject: "\(rule)", device: "")
    }

    // MARK: - Routes outside an interface

    /// Adds an `unreachable` default route (IPv4 or IPv6) to `table`: a lookup that ends there
    /// fails with ENETUNREACH instead of going on to the next rule.
    public func addUnreachableDefaultRoute(ipv4: Bool, table: UInt32) throws(IOError) {
        try changeRoute(
            RouteNetlink.newRoute, Self.defaultRoute(ipv4: ipv4), oif: nil, routeType: RouteNetlink.routeUnreachable,
            metric: nil, table: table, routeProtocol: RouteNetlink.protocolStatic,
            flags: RouteNetlink.request | RouteNetlink.ack | RouteNetlink.create | RouteNetlink.exclusive,
            subject: "unreachable \(ipv4 ? "0.0.0.0/0" : "::/0") table \(table)", device: "")
    }

    /// Deletes the `unreachable` default route (IPv4 or IPv6) of `table` (ESRCH when there is none).
    public func deleteUnreachableDefaultRoute(ipv4: Bool, table: UInt32) throws(IOError) {
        try changeRoute(
            RouteNetlink.delRoute, Self.defaultRoute(ipv4: ipv4), oif: nil, routeType: RouteNetlink.routeUnreachable,
            metric: nil, table: table, routeProtocol: 0, flags: RouteNetlink.request | RouteNetlink.ack,
            subject: "unreachable \(ipv4 ? "0.0.0.0/0" : "::/0") table \(table)", device: "")
    }

    /// True when `table` holds any route, IPv4 or IPv6 (`ip route show table N` is not empty). A
    /// kernel without IPv6 (ipv6.disable=1) has no IPv6 routes.
    public func tableHasRoutes(_ table: UInt32) throws(IOError) -> Bool {
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            var message = NetlinkMessage(type: RouteNetlink.getRoute, flags: RouteNetlink.request | RouteNetlink.dump)
            message.append(bytes: [family, 0, 0, 0, 0, 0, 0, 0])
            message.append(UInt32(0))
            let replies: [NetlinkReply]
            do {
                replies = try transact(&message, subject: "routes of table \(table)", device: "")
            } catch where error.errno == EAFNOSUPPORT && family == UInt8(AF_INET6) {
                continue
            }
            for reply in replies where reply.type == RouteNetlink.newRoute {
                let p = reply.payload
                guard p.count >= 12 else { continue }
                let attributes = NetlinkAttributes(p, from: 12)
                let routeTable = attributes[RouteNetlink.rtaTable].map { $0.load32(at: 0) } ?? UInt32(p[4])
                if routeTable == table { return true }
            }
        }
        return false
    }

    /// 0.0.0.0/0 or ::/0.
    public static func defaultRoute(ipv4: Bool) -> NetlinkPrefix {
        NetlinkPrefix(bytes: [UInt8](repeating: 0, count: ipv4 ? 4 : 16), length: 0)!
    }
}

extension RouteNetlink {
    /// fib_rule_hdr.action FR_ACT_TO_TBL, and its flag FIB_RULE_INVERT (linux/fib_rules.h).
    static let ruleActionToTable: UInt8 = 1
    static let ruleInvert: UInt32 = 0x2
    static let fraPriority: UInt16 = 6, fraFirewallMark: UInt16 = 10, fraSuppressPrefixLength: UInt16 = 14
    static let fraTable: UInt16 = 15, fraFirewallMask: UInt16 = 16
    /// RTN_UNREACHABLE.
    static let routeUnreachable: UInt8 = 7
}
