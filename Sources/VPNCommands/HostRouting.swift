// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore
import VPNLinux

/// Where the kernel routes for AllowedIPs go: `Table`, resolved to a number.
enum RoutePlacement: Equatable, Sendable {
    /// `Table = auto`: the main table, except 0.0.0.0/0 and ::/0, which get the full tunnel's
    /// policy routing (``HostRouting/fullTunnel``).
    case main
    /// `Table = off`: no routes at all.
    case none
    /// `Table = N` (or a name for N): every AllowedIPs prefix in table N, default routes
    /// included, and no rules.
    case table(UInt32)

    /// The table the routes go into (the main table for `.none`, which adds none).
    var tableNumber: UInt32 {
        if case .table(let number) = self { return number }
        return RouteNetlink.mainTable
    }
}

/// One thing the full tunnel installs beside the interface, as its marker file lists it.
enum HostEntry: Equatable, Sendable, CustomStringConvertible {
    /// A default route (IPv4 or IPv6) through the interface in `table`.
    case route(ipv4: Bool, table: UInt32, device: String)
    /// An `unreachable` default route in `table`: the family without a default route in AllowedIPs
    /// ends there instead of leaving outside the tunnel.
    case unreachable(ipv4: Bool, table: UInt32)
    case rule(NetlinkRule)

    var isIPv4: Bool {
        switch self {
        case .route(let ipv4, _, _), .unreachable(let ipv4, _): return ipv4
        case .rule(let rule): return rule.ipv4
        }
    }

    var description: String {
        switch self {
        case .route(let ipv4, let table, let device): return "\(ipv4 ? "0.0.0.0/0" : "::/0") dev \(device) table \(table)"
        case .unreachable(let ipv4, let table): return "unreachable \(ipv4 ? "0.0.0.0/0" : "::/0") table \(table)"
        case .rule(let rule): return "rule \(rule)"
        }
    }
}

/// What `Table`, `FwMark` and the AllowedIPs ask of the host's routing, decided once at start,
/// as wg-quick does it (`man wg-quick`):
///
/// - the routes of AllowedIPs go where `Table` says (``RoutePlacement``);
/// - the underlay sockets (UDP, or TCP: listener, accepted and dialled connections) carry
///   ``socketMark`` as `SO_MARK`: `FwMark`, or the full tunnel's mark;
/// - with `Table = auto` and 0.0.0.0/0 or ::/0 among the AllowedIPs, the **full tunnel**: table
///   M (`FwMark` when set, else the first empty table from 51820 on) holds the default route
///   through the interface; rule `not fwmark M lookup M` (priority 32765) sends every packet
///   without vpnd's mark there, and rule `lookup main suppress_prefixlength 0` (priority 32764,
///   consulted first) keeps every route of the main table except its default route. vpnd's own
///   packets carry mark M, skip table M and leave by the main table as before. A family
///   without a default route in AllowedIPs gets the same two rules and an `unreachable` default
///   route in table M, so that it cannot leave outside the tunnel either; and
///   `net.ipv4.conf.all.src_valid_mark = 1`, as wg-quick sets it.
struct HostRouting: Equatable, Sendable {
    var placement: RoutePlacement = .main
    /// `SO_MARK` on the underlay sockets; 0: none.
    var socketMark: UInt32 = 0
    /// The full tunnel's table (its mark too) and what it installs, in order; nil: no full tunnel.
    var fullTunnel: FullTunnel? = nil

    struct FullTunnel: Equatable, Sendable {
        var table: UInt32
        /// The families with a default route in AllowedIPs (the other one is blocked).
        var tunnelsIPv4: Bool
        var tunnelsIPv6: Bool
        /// In the order they are installed (removed last first).
        var entries: [HostEntry]

        /// Whether the family goes through the tunnel (or is blocked).
        func tunnels(ipv4: Bool) -> Bool { ipv4 ? tunnelsIPv4 : tunnelsIPv6 }
    }

    /// The priority of `lookup main suppress_prefixlength 0`, consulted first, and of
    /// `not fwmark M lookup M`: what wg-quick's rules get on a host with only the kernel's three
    /// rules (0 local, 32766 main, 32767 default).
    static let suppressPriority: UInt32 = 32764
    static let markPriority: UInt32 = 32765
    /// The first table (and mark) a full tunnel tries, as wg-quick.
    static let firstTable: UInt32 = 51820
    /// How many tables after ``firstTable`` are tried before giving up.
    static let tablesTried: UInt32 = 1024

    /// The routing for `allowedIPs` (every peer's, tun mode) with `placement`, `fwMark` and the
    /// interface `device`; `freeTable` picks the full tunnel's table when `fwMark` is 0, and is
    /// called only then. Throws a one-line reason for a mark that cannot be a table.
    static func decide(
        allowedIPs: [IPPrefix], placement: RoutePlacement, fwMark: UInt32, device: String,
        freeTable: () throws -> UInt32
    ) throws -> HostRouting {
        var routing = HostRouting(placement: placement, socketMark: fwMark)
        let v4 = allowedIPs.contains { $0.length == 0 && $0.address.isIPv4 }
        let v6 = allowedIPs.contains { $0.length == 0 && !$0.address.isIPv4 }
        guard placement == .main, v4 || v6 else { return routing }
        let table = fwMark != 0 ? fwMark : try freeTable()
        guard table != 253 && table != 254 && table != 255 else {
            throw StartupError(
                "FwMark = \(fwMark) with \(v4 ? "0.0.0.0/0" : "::/0") in AllowedIPs: the full tunnel uses the mark as its routing table, and \(table) is the kernel's \(table == 254 ? "main" : table == 253 ? "default" : "local") table; pick another FwMark (or leave it out: vpnd picks 51820 or the next free one)")
        }
        routing.socketMark = table
        var entries: [HostEntry] = []
        for ipv4 in [true, false] {
            let tunneled = ipv4 ? v4 : v6
            entries.append(tunneled ? .route(ipv4: ipv4, table: table, device: device) : .unreachable(ipv4: ipv4, table: table))
        }
        for ipv4 in [true, false] {
            // The suppressing rule first: until the marked one exists it changes nothing.
            entries.append(.rule(NetlinkRule(
                ipv4: ipv4, priority: suppressPriority, table: RouteNetlink.mainTable, suppressPrefixLength: 0)))
            entries.append(.rule(NetlinkRule(ipv4: ipv4, priority: markPriority, table: table, firewallMark: table, inverted: true)))
        }
        routing.fullTunnel = FullTunnel(table: table, tunnelsIPv4: v4, tunnelsIPv6: v6, entries: entries)
        return routing
    }

    /// wg-quick's choice of table: `first` or the next one up that holds no route (IPv4 or IPv6).
    static func firstFreeTable(from first: UInt32 = firstTable, count: UInt32 = tablesTried, inUse: (UInt32) throws -> Bool)
        throws -> UInt32
    {
        for table in first..<(first + count) where table != 253 && table != 254 && table != 255 {
            if try !inUse(table) { return table }
        }
        throw StartupError(
            "routing tables \(first) to \(first + count - 1) all hold routes, so the full tunnel has no table of its own; set FwMark to a free table number")
    }

    /// One line for the log about the full tunnel.
    var summary: String? {
        guard let tunnel = fullTunnel else { return nil }
        let families = [tunnel.tunnelsIPv4 ? "IPv4" : nil, tunnel.tunnelsIPv6 ? "IPv6" : nil].compactMap { $0 }.joined(separator: " and ")
        var text = "full tunnel: \(families) through the tunnel by policy routing (table \(tunnel.table), rules at priorities \(Self.suppressPriority) and \(Self.markPriority)); the underlay sockets carry mark 0x\(String(tunnel.table, radix: 16))"
        if !tunnel.tunnelsIPv4 || !tunnel.tunnelsIPv6 {
            text += "; \(tunnel.tunnelsIPv4 ? "IPv6" : "IPv4") is blocked outside the tunnel (no \(tunnel.tunnelsIPv4 ? "::/0" : "0.0.0.0/0") in AllowedIPs)"
        }
        return text
    }
}

/// `Table = NAME`: the number iproute2 gives that name.
enum RouteTableNames {
    /// Where iproute2 keeps table names; the first is searched first.
    static let files = ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"]

    /// The number of table `name` in the text of an rt_tables file ("NUMBER NAME" lines, `#`
    /// comments, decimal or 0x hex numbers); nil when it has none.
    static func lookup(_ name: String, in text: String) -> UInt32? {
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let content = line.prefix { $0 != "#" }
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[1] == name else { continue }
            let number = fields[0].lowercased()
            if number.hasPrefix("0x") { return UInt32(number.dropFirst(2), radix: 16) }
            return UInt32(number)
        }
        return nil
    }

    /// The table number of `name`, from the first of ``files`` that names it (`read` gives a
    /// file's text, nil when it cannot be read).
    static func resolve(_ name: String, read: (String) -> String?) throws -> UInt32 {
        for file in files {
            guard let text = read(file), let number = lookup(name, in: text) else { continue }
            guard number != 0 && number != 253 && number != 255 else {
                throw StartupError(
                    "Table = \(name) is table \(number) in \(file), which the kernel keeps for itself (0 unspec, 253 default, 255 local); pick another table")
            }
            return number
        }
        throw StartupError(
            "Table = \(name): no such routing table in \(files.joined(separator: " or ")); add a line \"NUMBER \(name)\" to \(files[0]) or give the table's number")
    }

    /// `Table` as a ``RoutePlacement``; a name is looked up with `read`.
    static func placement(of setting: Config.RouteTableSetting, read: (String) -> String?) throws -> RoutePlacement {
        switch setting {
        case .auto: return .main
        case .off: return .none
        case .number(let number): return .table(number)
        case .name(let name): return .table(try resolve(name, read: read))
        }
    }
}

/// `RUN_DIRECTORY/NAME.host`: what the full tunnel installed beside interface NAME, written (mode
/// 0600) before any of it is, removed once all of it is gone again. A vpnd that finds one at
/// start (the last one with this Name crashed or was killed) removes what it lists first.
///
/// The format, one entry a line in install order, `#` comments:
///
///     vpnd-host 1
///     route ipv4 default table 51820 dev vpnd0
///     unreachable ipv6 default table 51820
///     rule ipv4 priority 32764 table 254 suppress_prefixlength 0
///     rule ipv4 priority 32765 not fwmark 51820 table 51820
enum HostMarker {
    static let header = "vpnd-host 1"
    static let maximumSize = 16 << 10

    static func path(runDirectory: String, name: String) -> String { runDirectory + "/" + name + ".host" }

    static func encode(_ entries: [HostEntry], interface: String) -> String {
        var lines = [
            "# what vpnd installed beside interface \(interface); it removes this on stop, or at its next start after a crash",
            header,
        ]
        for entry in entries {
            switch entry {
            case .route(let ipv4, let table, let device):
                lines.append("route \(ipv4 ? "ipv4" : "ipv6") default table \(table) dev \(device)")
            case .unreachable(let ipv4, let table):
                lines.append("unreachable \(ipv4 ? "ipv4" : "ipv6") default table \(table)")
            case .rule(let rule):
                var line = "rule \(rule.ipv4 ? "ipv4" : "ipv6") priority \(rule.priority)"
                if rule.inverted { line += " not" }
                if let mark = rule.firewallMark { line += " fwmark \(mark)" }
                line += " table \(rule.table)"
                if let length = rule.suppressPrefixLength { line += " suppress_prefixlength \(length)" }
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A line that is not an entry: its number (1-based) and what is wrong.
    struct Damage: Error, Equatable {
        var line: Int
        var reason: String
    }

    static func decode(_ text: String) throws(Damage) -> [HostEntry] {
        var entries: [HostEntry] = []
        var sawHeader = false
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.prefix { $0 != "#" }
            let words = line.split(separator: " ").map(String.init)
            if words.isEmpty { continue }
            let number = index + 1
            if !sawHeader {
                guard words.joined(separator: " ") == header else {
                    throw Damage(line: number, reason: "the first entry is not \"\(header)\"")
                }
                sawHeader = true
                continue
            }
            guard let entry = entry(words) else { throw Damage(line: number, reason: "\"\(words.joined(separator: " "))\" is not an entry") }
            entries.append(entry)
        }
        guard sawHeader else { throw Damage(line: 1, reason: "no \"\(header)\" line") }
        return entries
    }

    private static func entry(_ words: [String]) -> HostEntry? {
        guard words.count >= 2, words[1] == "ipv4" || words[1] == "ipv6" else { return nil }
        let ipv4 = words[1] == "ipv4"
        switch words[0] {
        case "route":
            guard words.count == 7, words[2] == "default", words[3] == "table", let table = UInt32(words[4]),
                words[5] == "dev", Self.isInterfaceName(words[6])
            else { return nil }
            return .route(ipv4: ipv4, table: table, device: words[6])
        case "unreachable":
            guard words.count == 5, words[2] == "default", words[3] == "table", let table = UInt32(words[4]) else { return nil }
            return .unreachable(ipv4: ipv4, table: table)
        case "rule":
            guard words.count >= 6, words[2] == "priority", let priority = UInt32(words[3]) else { return nil }
            var rest = Array(words[4...])
            var rule = NetlinkRule(ipv4: ipv4, priority: priority, table: 0)
            if rest.first == "not" {
                rule.inverted = true
                rest.removeFirst()
            }
            if rest.first == "fwmark" {
                guard rest.count >= 2, let mark = UInt32(rest[1]) else { return nil }
                rule.firewallMark = mark
                rest.removeFirst(2)
            }
            guard rest.count >= 2, rest[0] == "table", let table = UInt32(rest[1]) else { return nil }
            rule.table = table
            rest.removeFirst(2)
            if rest.first == "suppress_prefixlength" {
                guard rest.count >= 2, let length = UInt32(rest[1]) else { return nil }
                rule.suppressPrefixLength = length
                rest.removeFirst(2)
            }
            return rest.isEmpty ? .rule(rule) : nil
        default:
            return nil
        }
    }

    private static func isInterfaceName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 15
            && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }
    }
}
