// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNLinux

/// `DNS =`: the tunnel's name servers and search domains, handed to the host's resolver while the
/// interface is up and withdrawn when it goes.
///
/// With `resolvconf` on PATH, as wg-quick does: `nameserver ADDRESS` lines and one `search D...`
/// line piped into `resolvconf -a PREFIXIFACE -m 0 -x`, and `resolvconf -d PREFIXIFACE -f` on
/// stop, where PREFIX is wg-quick's: from the first `NAME*` line of /etc/resolvconf/interface-order
/// (`tun*` gives `tun.`), when that file exists and `resolvconf` is not a symbolic link (as
/// systemd-resolved's is); else empty. Without resolvconf, with `resolvectl` (systemd-resolved;
/// wg-quick never uses it): `resolvectl dns IFACE ADDRESS...`, `resolvectl domain IFACE ~. D...`
/// (`~.`: every name is looked up here first, what resolvconf's `-x` asks for), and `resolvectl
/// revert IFACE` on stop.
final class DNSStep: HostStep {
    enum Tool: Equatable, Sendable {
        /// resolvconf at this path, with wg-quick's interface prefix ("tun." or "").
        case resolvconf(path: String, prefix: String)
        case resolvectl(path: String)
    }

    /// One command: its arguments and what goes to its stdin.
    struct Command: Equatable, Sendable {
        var arguments: [String]
        var input: String = ""
    }

    /// How long each resolvconf or resolvectl command may run.
    static let timeLimit: Duration = .seconds(20)
    static let interfaceOrderFile = "/etc/resolvconf/interface-order"

    let name = "DNS"
    let tool: Tool
    private let servers: [IPAddress]
    private let search: [String]
    private let interface: String
    private let commands: any HostCommands
    private let log: HostLog

    init(tool: Tool, servers: [IPAddress], search: [String], interface: String, commands: any HostCommands, log: HostLog) {
        self.tool = tool
        self.servers = servers
        self.search = search
        self.interface = interface
        self.commands = commands
        self.log = log
    }

    /// The step for `host`, nil without `DNS`; throws the one line when neither tool is on PATH.
    static func make(for host: Config.HostSettings, interface: String, commands: any HostCommands, log: HostLog) throws -> DNSStep? {
        guard !host.dnsServers.isEmpty || !host.dnsSearch.isEmpty else { return nil }
        return DNSStep(
            tool: try tool(commands), servers: host.dnsServers, search: host.dnsSearch, interface: interface, commands: commands,
            log: log)
    }

    /// resolvconf when it is on PATH, else resolvectl; else the one line naming both.
    static func tool(_ commands: any HostCommands) throws -> Tool {
        if let path = commands.find("resolvconf") {
            let order = commands.isSymbolicLink(path) ? nil : commands.readFile(interfaceOrderFile)
            return .resolvconf(path: path, prefix: resolvconfPrefix(interfaceOrder: order))
        }
        if let path = commands.find("resolvectl") { return .resolvectl(path: path) }
        throw StartupError(
            "DNS needs resolvconf or resolvectl, and neither is on PATH (\(commands.searchPath)); install openresolv or systemd-resolved, add the directory that holds one to PATH, or remove the DNS line")
    }

    /// wg-quick's prefix for resolvconf's interface name: "NAME." from the first line of
    /// /etc/resolvconf/interface-order that is `NAME*` (NAME of letters, digits and `-`), or "".
    static func resolvconfPrefix(interfaceOrder: String?) -> String {
        guard let interfaceOrder else { return "" }
        for raw in interfaceOrder.split(separator: "\n") {
            let line = raw.trimmingSpacesAndTabs
            guard line.count >= 2, line.last == "*" else { continue }
            let name = line.dropLast()
            let allowed = name.utf8.allSatisfy { c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-")
            }
            if allowed { return name + "." }
        }
        return ""
    }

    /// What resolvconf reads: a `nameserver` line per server, then one `search` line.
    static func resolvconfInput(servers: [IPAddress], search: [String]) -> String {
        var text = servers.map { "nameserver \($0)\n" }.joined()
        if !search.isEmpty { text += "search " + search.joined(separator: " ") + "\n" }
        return text
    }

    /// The commands that hand the servers and domains over, in order.
    static func applyCommands(_ tool: Tool, interface: String, servers: [IPAddress], search: [String]) -> [Command] {
        switch tool {
        case .resolvconf(_, let prefix):
            return [Command(arguments: ["-a", prefix + interface, "-m", "0", "-x"], input: resolvconfInput(servers: servers, search: search))]
        case .resolvectl:
            return [
                Command(arguments: ["dns", interface] + servers.map(\.description)),
                Command(arguments: ["domain", interface, "~."] + search),
            ]
        }
    }

    /// The command that withdraws them.
    static func undoCommand(_ tool: Tool, interface: String) -> Command {
        switch tool {
        case .resolvconf(_, let prefix): return Command(arguments: ["-d", prefix + interface, "-f"])
        case .resolvectl: return Command(arguments: ["revert", interface])
        }
    }

    private var path: String {
        switch tool {
        case .resolvconf(let path, _), .resolvectl(let path): return path
        }
    }

    private var program: String {
        switch tool {
        case .resolvconf: return "resolvconf"
        case .resolvectl: return "resolvectl"
        }
    }

    /// Runs `command`; nil on success, else what went wrong (one clause).
    private func execute(_ command: Command) -> String? {
        var last = ""
        let program = self.program
        let log = self.log
        log.info("DNS: [#] \(program) \(command.arguments.joined(separator: " "))")
        let outcome = commands.run(path, command.arguments, input: Array(command.input.utf8), timeLimit: Self.timeLimit) { line in
            log.info("DNS: \(program): \(line)")
            if !line.isEmpty { last = line }
        }
        guard !outcome.succeeded else { return nil }
        let said = last.isEmpty ? "" : " (it said: \(last.prefix(200)))"
        return "`\(program) \(command.arguments.joined(separator: " "))` \(outcome)\(said)"
    }

    func apply() throws {
        let steps = Self.applyCommands(tool, interface: interface, servers: servers, search: search)
        for (i, command) in steps.enumerated() {
            if let problem = execute(command) {
                if i > 0 { _ = execute(Self.undoCommand(tool, interface: interface)) }
                throw StartupError(
                    "DNS: \(problem); fix \(program) (\(path)) or remove the DNS line")
            }
        }
    }

    func undo() {
        if let problem = execute(Self.undoCommand(tool, interface: interface)) {
            log.warning("DNS: \(problem); the host may still use the tunnel's DNS servers (remove them by hand)")
        }
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs (what bash's `read` trims).
    fileprivate var trimmingSpacesAndTabs: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
