// SPDX-License-Identifier: MIT
import VPNBasics

extension Config {
    /// What the host around the interface gets, as wg-quick's keys mean it (`man wg-quick`), plus
    /// vpnd's kill switch and server-side forwarding: the `[Interface]` keys `DNS`, `Table`,
    /// `FwMark`, `PreUp`, `PostUp`, `PreDown`, `PostDown`, `SaveConfig` (false only),
    /// `KillSwitch`, `AllowLAN`, `Forward` and `Masquerade`.
    public struct HostSettings: Equatable, Sendable {
        /// `DNS`: the servers (addresses) in file order.
        public var dnsServers: [IPAddress] = []
        /// `DNS`: the search domains (the entries that are not addresses), in file order.
        public var dnsSearch: [String] = []
        /// `Table`, default ``RouteTableSetting/auto``.
        public var table: RouteTableSetting = .auto
        /// `FwMark`: the mark on the underlay sockets (0 or `off`: none, unless a full tunnel
        /// picks one).
        public var fwMark: UInt32 = 0
        /// The hook commands, each run with bash, `%i` replaced by the interface name.
        public var preUp: [String] = []
        public var postUp: [String] = []
        public var preDown: [String] = []
        public var postDown: [String] = []
        /// `KillSwitch`, default off.
        public var killSwitch: KillSwitch = .off
        /// `AllowLAN`, default off: with the kill switch, the directly connected subnets stay
        /// reachable outside the tunnel.
        public var allowLAN = false
        /// `Forward`, default off: forward the tunnel's traffic (a server for a network behind it).
        public var forward = false
        /// `Masquerade`: the interface the tunnel's traffic is NATed out of (needs `Forward`).
        public var masquerade: String?

        public init() {}

        /// True when nothing is asked of the host (the defaults).
        public var isDefault: Bool { self == HostSettings() }
    }

    /// `Table`: where the routes for `AllowedIPs` go.
    public enum RouteTableSetting: Equatable, Sendable, CustomStringConvertible {
        /// The main table; with `0.0.0.0/0` or `::/0`, wg-quick's policy routing (a table of
        /// its own selected by the fwmark).
        case auto
        /// No routes at all.
        case off
        /// This table, by number.
        case number(UInt32)
        /// This table, by its name in /etc/iproute2/rt_tables (looked up at start).
        case name(String)

        public var description: String {
            switch self {
            case .auto: return "auto"
            case .off: return "off"
            case .number(let n): return String(n)
            case .name(let name): return name
            }
        }
    }

    /// `KillSwitch`: whether nothing may leave the host outside the tunnel.
    public enum KillSwitch: String, Equatable, Sendable {
        case off
        /// While the interface is configured.
        case on
        /// Also after vpnd stops or crashes, until `vpnd down NAME`.
        case persistent
    }
}

extension ConfigValues {
    /// `Table`: `auto`, `off`, a number (1 to 2^32 - 1, not 253 to 255, which the kernel keeps
    /// for `default`, `main` and `local`), or a table name.
    static func routeTable(_ text: String) throws(ValueProblem) -> Config.RouteTableSetting {
        switch text.lowercased() {
        case "auto": return .auto
        case "off": return .off
        case "main": return .number(254)
        default:
            if let value = decimal(text, maxDigits: 10) {
                guard value >= 1 && value <= Int(UInt32.max), value != 253, value != 255 else {
                    throw ValueProblem("\"\(text)\" is not a usable routing table (1 to 4294967295, not 253 or 255)")
                }
                return .number(UInt32(value))
            }
            let allowed = text.utf8.allSatisfy { c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
                    || c == UInt8(ascii: ".")
            }
            guard allowed, text.utf8.count <= 64 else {
                throw ValueProblem("\"\(text)\" is not auto, off, a table number or a table name")
            }
            return .name(text)
        }
    }

    /// `FwMark`: `off`, a decimal number or `0x` hex, 32 bits.
    static func firewallMark(_ text: String) throws(ValueProblem) -> UInt32 {
        let lowered = text.lowercased()
        if lowered == "off" { return 0 }
        if lowered.hasPrefix("0x"), lowered.count > 2, lowered.count <= 10, let value = UInt32(lowered.dropFirst(2), radix: 16) {
            return value
        }
        if let value = decimal(text, maxDigits: 10), value <= Int(UInt32.max) { return UInt32(value) }
        throw ValueProblem("\"\(text)\" is not off, a number or 0x hex of 32 bits")
    }

    /// One `DNS` entry: a server address, or a search domain.
    static func dnsEntry(_ text: String) throws(ValueProblem) -> (server: IPAddress?, domain: String?) {
        if let address = IPAddress(text) { return (address, nil) }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !text.isEmpty && text.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { c in
                    (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                        || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
                }
        }
        guard valid else { throw ValueProblem("\"\(text)\" is neither an IP address nor a search domain") }
        return (nil, text)
    }

    /// `KillSwitch`: off, on or persistent.
    static func killSwitch(_ text: String) throws(ValueProblem) -> Config.KillSwitch {
        switch text.lowercased() {
        case "off", "no", "false": return .off
        case "on", "yes", "true": return .on
        case "persistent": return .persistent
        default: throw ValueProblem("\"\(text)\" is not off, on or persistent")
        }
    }

    /// `SaveConfig`: only false; vpnd never rewrites its file on stop.
    static func saveConfig(_ text: String) throws(ValueProblem) {
        guard try !onOff(text) else {
            throw ValueProblem(
                "= true is not supported: vpnd never rewrites its config file when it stops; remove the line (`wg showconf NAME` prints the running configuration)")
        }
    }
}
