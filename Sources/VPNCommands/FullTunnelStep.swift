// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore
import VPNLinux

/// The full tunnel's host step (``HostRouting``): writes the marker file, sets
/// `src_valid_mark`, installs the default routes of table M and the rules; undo removes them
/// (the kernel removes a deleted link's routes, never rules or `unreachable` routes) and then
/// the marker.
final class FullTunnelStep: HostStep {
    let name = "policy routing"
    private let tunnel: HostRouting.FullTunnel
    private let summary: String
    private let markerPath: String
    private let interface: String
    private let transport: Config.Transport
    private let addresses: [IPPrefix]
    private let netlink: Mutex<Netlink>
    private let logger: Logger

    /// The step for `plan` (none without a full tunnel).
    static func steps(for plan: LaunchPlan, interface: String, logger: Logger) throws -> [any HostStep] {
        guard let tunnel = plan.routing.fullTunnel else { return [] }
        return [try FullTunnelStep(
            tunnel: tunnel, summary: plan.routing.summary ?? "full tunnel",
            markerPath: HostMarker.path(runDirectory: plan.runDirectory, name: interface), interface: interface,
            transport: plan.transport, addresses: plan.addresses, logger: logger)]
    }

    init(
        tunnel: HostRouting.FullTunnel, summary: String, markerPath: String, interface: String,
        transport: Config.Transport = .udp, addresses: [IPPrefix] = [], logger: Logger
    ) throws {
        self.tunnel = tunnel
        self.transport = transport
        self.addresses = addresses
        self.summary = summary
        self.markerPath = markerPath
        self.interface = interface
        self.logger = logger
        do throws(IOError) { netlink = Mutex(try Netlink()) } catch { throw StartupError("full tunnel: \(error)") }
    }

    func apply() throws {
        // The marker first: a crash from here on leaves the list of what to remove.
        guard Posix.replaceFileAtomically(markerPath, HostMarker.encode(tunnel.entries, interface: interface)) else {
            throw StartupError(
                "full tunnel: cannot write \(markerPath) (the list of rules to remove after a crash); the run directory must be writable")
        }
        // As wg-quick sets it. It only matters where the marks of incoming packets are restored
        // (wg-quick's conntrack rules, not vpnd's), so a read-only /proc/sys (systemd's
        // ProtectKernelTunables=) is one line, not a failure.
        if Sysctl.read(Self.sourceValidMark) != "1" {
            do throws(IOError) {
                try Sysctl.write(Self.sourceValidMark, "1")
            } catch {
                logger.info("full tunnel: \(Self.sourceValidMark) stays \(Sysctl.read(Self.sourceValidMark) ?? "unset") (\(error)); it matters only where incoming packets get their mark back for reverse-path filtering")
            }
        }
        var installed: [HostEntry] = []
        for entry in tunnel.entries {
            do throws(IOError) {
                try netlink.withLock { (netlink) throws(IOError) in try Self.install(entry, with: netlink) }
                installed.append(entry)
            } catch where Self.familyUnsupported.contains(error.errno) && !tunnel.tunnels(ipv4: entry.isIPv4) {
                // The kernel has no such family (ipv6.disable=1): nothing of it to block.
                logger.debug("full tunnel: \(entry) skipped: \(error)")
            } catch {
                let left = netlink.withLock { Self.remove(installed.reversed(), with: $0) }
                if left.isEmpty { SmallFiles.remove(markerPath) }
                throw StartupError("full tunnel: \(error)")
            }
        }
        // wg-quick's conntrack marks and anti-spoofing rules (FullTunnelConntrack).
        do throws(NFTablesError) {
            try NFTables.run(FullTunnelConntrack.script(
                interface: interface, mark: tunnel.table, transport: transport, addresses: addresses,
                tunnelsIPv4: tunnel.tunnelsIPv4, tunnelsIPv6: tunnel.tunnelsIPv6))
        } catch {
            let left = netlink.withLock { Self.remove(installed.reversed(), with: $0) }
            if left.isEmpty { SmallFiles.remove(markerPath) }
            throw StartupError(
                "full tunnel: nftables refused tables ip/ip6 \(FullTunnelConntrack.tableName(for: interface)) (the conntrack marks that let reverse-path filtering accept the peers' packets): \(error.message); vpnd needs a kernel with nf_tables")
        }
        logger.info("\(summary)")
    }

    func undo() {
        do throws(NFTablesError) {
            try NFTables.run(FullTunnelConntrack.removal(interface: interface))
        } catch {
            logger.warning("full tunnel: removing tables ip/ip6 \(FullTunnelConntrack.tableName(for: interface)) failed: \(error.message); the next start with this Name replaces them")
        }
        let left = netlink.withLock { Self.remove(tunnel.entries.reversed(), with: $0) }
        guard let (entry, error) = left.first else {
            SmallFiles.remove(markerPath)
            return
        }
        logger.warning(
            "full tunnel: removing \(entry) failed: \(error)\(left.count > 1 ? " (and \(left.count - 1) more)" : ""); \(markerPath) stays, and the next start with this Name removes what it lists")
    }

    static let sourceValidMark = "net.ipv4.conf.all.src_valid_mark"
    /// What rtnetlink answers for a family the kernel was booted without (ipv6.disable=1):
    /// EAFNOSUPPORT for rules, EOPNOTSUPP for routes.
    static let familyUnsupported: [Int32] = [97, 95]

    static func install(_ entry: HostEntry, with netlink: Netlink) throws(IOError) {
        switch entry {
        case .route(let ipv4, let table, let device):
            try netlink.addRoute(to: Netlink.defaultRoute(ipv4: ipv4), device: device, table: table)
        case .unreachable(let ipv4, let table):
            try netlink.addUnreachableDefaultRoute(ipv4: ipv4, table: table)
        case .rule(let rule):
            try netlink.addRule(rule)
        }
    }

    /// Removes `entries` in this order; one already gone (no such route, rule or interface)
    /// counts as removed. Returns those it could not remove, with the reason.
    static func remove(_ entries: some Sequence<HostEntry>, with netlink: Netlink) -> [(HostEntry, IOError)] {
        var left: [(HostEntry, IOError)] = []
        for entry in entries {
            do throws(IOError) {
                switch entry {
                case .route(let ipv4, let table, let device):
                    try netlink.deleteRoute(to: Netlink.defaultRoute(ipv4: ipv4), device: device, table: table)
                case .unreachable(let ipv4, let table):
                    try netlink.deleteUnreachableDefaultRoute(ipv4: ipv4, table: table)
                case .rule(let rule):
                    try netlink.deleteRule(rule)
                }
            } catch {
                // ESRCH: no such route; ENOENT: no such rule; ENODEV: the interface (and its routes)
                // went; EAFNOSUPPORT: the family is disabled, so it has none.
                if [3, 2, 19].contains(error.errno) || familyUnsupported.contains(error.errno) { continue }
                left.append((entry, error))
            }
        }
        return left
    }
}

extension HostRouting {
    /// At start, before any socket exists: removes what a vpnd with this Name that did not stop
    /// cleanly left (``HostMarker``), resolves `Table`, and decides the routing (picking the full
    /// tunnel's table). vpnd-wg (`setUpInterface` false): nothing, wg-quick routes.
    static func prepare(for plan: LaunchPlan, logger: Logger) throws -> HostRouting {
        guard plan.setUpInterface else { return HostRouting() }
        let file = plan.configPath ?? plan.name
        try recover(runDirectory: plan.runDirectory, name: plan.name, logger: logger)
        let routing: HostRouting
        do {
            let placement = try RouteTableNames.placement(of: plan.host.table, read: Posix.readTextFile)
            routing = try decide(allowedIPs: plan.routes, placement: placement, fwMark: plan.host.fwMark, device: plan.name) {
                let netlink = try Netlink()
                return try firstFreeTable { (table) throws(IOError) in try netlink.tableHasRoutes(table) }
            }
        } catch let error as StartupError {
            throw StartupError("\(file): \(error.description)")
        } catch {
            throw StartupError("full tunnel: \(error)")
        }
        if plan.account != nil && !plan.keepNetAdmin {
            if routing.fullTunnel != nil {
                throw StartupError(
                    "\(file): a default route in AllowedIPs (Table = auto) makes a full tunnel, whose rules vpnd must remove when it stops, and with User = and KeepNetAdmin = no it could not; set KeepNetAdmin = yes, or Table = off and route yourself")
            }
            if routing.socketMark != 0 && plan.transport.carriesTCP && plan.role == .client {
                throw StartupError(
                    "\(file): FwMark over Transport = tcp or auto marks every connection vpnd dials, also after User = drops privileges, and with KeepNetAdmin = no it could not; set KeepNetAdmin = yes or remove FwMark")
            }
        }
        return routing
    }

    /// Removes what `RUN_DIRECTORY/NAME.host` lists, unless interface NAME exists (its vpnd still
    /// runs); then the file. Logs one info line when it removed something.
    static func recover(runDirectory: String, name: String, logger: Logger) throws {
        let path = HostMarker.path(runDirectory: runDirectory, name: name)
        guard Posix.fileExists(path) || Posix.owner(of: path) != nil else { return }
        if (try? Netlink.interfaceIndex(named: name)) != nil {
            logger.debug("\(path) is there, and so is interface \(name): its vpnd runs; left alone")
            return
        }
        let text: String
        switch Posix.readOwnFile(path, maxBytes: HostMarker.maximumSize) {
        case .missing: return
        case .refused(let reason):
            logger.warning("\(path) \(reason), so it is not the list vpnd writes; ignored (check ip rule for rules a crashed vpnd left, then delete it)")
            return
        case .text(let contents): text = contents
        }
        guard Posix.owner(of: path) == Posix.effectiveUserID else {
            logger.warning("\(path) was not written by this user (uid \(Posix.effectiveUserID)); ignored and removed")
            SmallFiles.remove(path)
            return
        }
        let entries: [HostEntry]
        do throws(HostMarker.Damage) {
            entries = try HostMarker.decode(text)
        } catch {
            throw StartupError(
                "\(path):\(error.line): \(error.reason); it lists what a vpnd that did not stop cleanly installed: remove that by hand (ip rule; ip route show table all) and delete the file")
        }
        let left: [(HostEntry, IOError)]
        do throws(IOError) {
            left = remove(entries, with: try Netlink())
        } catch {
            throw StartupError("\(path): \(error)")
        }
        if let (entry, error) = left.first {
            throw StartupError(
                "\(path): removing \(entry), left by a vpnd with interface \(name) that did not stop cleanly, failed: \(error); remove it by hand and delete the file")
        }
        SmallFiles.remove(path)
        try? NFTables.run(FullTunnelConntrack.removal(interface: name))
        logger.info(
            "a vpnd with interface \(name) did not stop cleanly: removed the \(entries.count) rules and routes it had installed (\(path))")
    }

    private static func remove(_ entries: [HostEntry], with netlink: Netlink) -> [(HostEntry, IOError)] {
        FullTunnelStep.remove(entries.reversed(), with: netlink)
    }
}
