// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore
import VPNLinux

/// The kill switch (`KillSwitch`, `AllowLAN`), forwarding (`Forward`) and NAT (`Masquerade`) as
/// host steps: nftables through libnftables, sysctls through /proc/sys. See FirewallRules for the
/// rules themselves and docs/operations.md ("Kill switch and forwarding") for what they do.
enum FirewallSetup {
    /// The steps for `host` around tunnel `interface`, in the order they apply: the kill switch,
    /// forwarding, masquerade; without a kill switch or masquerade, the removal of a table an
    /// earlier vpnd left (`KillSwitch = persistent`, or a crash); without `Forward`, the return
    /// of forwarding settings an earlier vpnd that crashed left changed.
    static func steps(for host: Config.HostSettings, interface: String, plan: LaunchPlan, logger: Logger) throws -> [any HostStep] {
        var steps: [any HostStep] = []
        let killSwitch = host.killSwitch != .off
        let marker = TableMarker(directory: plan.runDirectory, interface: interface)
        let undoNeedsNetAdmin = host.killSwitch == .on || host.forward || host.masquerade != nil
        if undoNeedsNetAdmin, plan.account != nil, !plan.keepNetAdmin {
            throw StartupError(
                "\(keys(host)) with User and KeepNetAdmin = no: vpnd could not undo \(host.forward ? "them" : "it") when it stops (that needs CAP_NET_ADMIN); set KeepNetAdmin = yes")
        }
        if killSwitch {
            if let bridge = plan.bridge {
                throw StartupError(
                    "KillSwitch with Bridge = \(bridge): what goes into the bridge also reaches its other ports, so the kill switch cannot tell tunnel traffic from the rest; remove one of them")
            }
            var rules = FirewallRules.KillSwitch(interface: interface, setting: host.killSwitch, transport: plan.transport)
            let peers = plan.tunnel.peers
            rules.peerEndpoints = peers.compactMap(\.endpoint)
            if plan.listenPort != 0 && ((plan.transport.carriesTCP && plan.role == .server) || (plan.transport.carriesUDP && peers.contains { $0.endpoint == nil })) {
                rules.localPort = plan.listenPort
            }
            rules.fwMark = host.fwMark
            if host.allowLAN { rules.lan = try connectedSubnets(excluding: interface) }
            steps.append(KillSwitchStep(rules: rules, marker: marker, logger: logger))
        }
        let record = ForwardingRecord(directory: plan.runDirectory, interface: interface)
        if host.forward {
            let carriesIPv6 = plan.addresses.contains { !$0.address.isIPv4 }
                || plan.tunnel.peers.contains { $0.allowedIPs.contains { !$0.address.isIPv4 } }
            steps.append(ForwardingStep(interface: interface, record: record, ipv6: carriesIPv6, logger: logger))
        }
        if let out = host.masquerade {
            guard out != interface else {
                throw StartupError("Masquerade = \(out) is the tunnel itself; name the interface toward the network behind this host (e.g. eth0)")
            }
            steps.append(
                MasqueradeStep(
                    rules: FirewallRules.Masquerade(interface: interface, outInterface: out, sharesTable: killSwitch), marker: marker,
                    logger: logger))
        }
        let checkTable = !killSwitch && host.masquerade == nil
        if checkTable || !host.forward {
            steps.append(
                LeftoverStep(
                    interface: interface, marker: checkTable ? marker : nil, record: host.forward ? nil : record, logger: logger))
        }
        return steps
    }

    private static func keys(_ host: Config.HostSettings) -> String {
        var keys: [String] = []
        if host.killSwitch == .on { keys.append("KillSwitch = on") }
        if host.forward { keys.append("Forward") }
        if host.masquerade != nil { keys.append("Masquerade") }
        return keys.joined(separator: ", ")
    }

    /// `AllowLAN`: the directly connected subnets of the other interfaces, from the main table.
    static func connectedSubnets(excluding tunnel: String) throws -> [IPPrefix] {
        do throws(IOError) {
            let netlink = try Netlink()
            var excluded: Set<Int32> = [try Netlink.interfaceIndex(named: tunnel)]
            if let loopback = try? Netlink.interfaceIndex(named: "lo") { excluded.insert(loopback) }
            return FirewallRules.lanPrefixes(from: try netlink.routes(inTable: RouteNetlink.mainTable), excludingInterfaces: excluded)
        } catch {
            throw StartupError("AllowLAN: cannot read the routes of the main table: \(error)")
        }
    }

    /// Whether `table inet vpnd-IFNAME` exists; nil when nftables cannot be asked (no nf_tables,
    /// no permission), with the reason.
    static func tableExists(interface: String) -> Result<Bool, NFTablesError> {
        do throws(NFTablesError) {
            let text = try NFTables.listJSON("list tables \(FirewallRules.family)")
            guard let tables = FirewallRules.tables(fromJSON: text) else {
                return .failure(NFTablesError(message: "libnftables listed its tables in JSON vpnd cannot read"))
            }
            return .success(tables.contains { $0.family == FirewallRules.family && $0.name == FirewallRules.tableName(for: interface) })
        } catch {
            return .failure(error)
        }
    }
}

/// `KillSwitch = on | persistent`: the output chain that lets nothing out but the tunnel, vpnd's
/// own underlay traffic to its peers, `lo` and (`AllowLAN`) the LAN.
final class KillSwitchStep: HostStep {
    let name = "kill switch"
    let rules: FirewallRules.KillSwitch
    private let marker: TableMarker
    private let logger: Logger

    init(rules: FirewallRules.KillSwitch, marker: TableMarker, logger: Logger) {
        self.rules = rules
        self.marker = marker
        self.logger = logger
    }

    func apply() throws {
        try marker.save()
        do throws(NFTablesError) {
            try NFTables.run(FirewallRules.installKillSwitch(rules))
        } catch {
            throw StartupError("KillSwitch: nftables refused table inet \(FirewallRules.tableName(for: rules.interface)): \(error.message); vpnd needs root or CAP_NET_ADMIN and a kernel with nf_tables")
        }
        let l4 = rules.transport == .auto ? "udp/tcp" : rules.transport.rawValue
        var open = rules.peerEndpoints.map { "\(l4) to \($0)" }
        if let port = rules.localPort { open.append("\(l4) from port \(port)") }
        if rules.fwMark != 0 { open.append("fwmark \(rules.fwMark)") }
        if let lan = rules.lan {
            open.append(lan.isEmpty ? "DHCP (AllowLAN: no directly connected subnet found)" : "DHCP and the LAN: \(lan.map(\.description).joined(separator: ", "))")
        }
        logger.info(
            "kill switch on (table inet \(FirewallRules.tableName(for: rules.interface))): nothing leaves but through \(rules.interface) and lo\(open.isEmpty ? "" : ", and " + open.joined(separator: ", "))")
    }

    func undo() {
        if rules.setting == .persistent {
            logger.info(
                "kill switch kept (KillSwitch = persistent): nothing leaves this host outside the tunnel until vpnd starts again or `vpnd down \(rules.interface)`")
            return
        }
        do throws(NFTablesError) {
            try NFTables.run(FirewallRules.removeTable(interface: rules.interface))
            marker.remove()
        } catch {
            logger.warning(
                "kill switch: could not remove table inet \(FirewallRules.tableName(for: rules.interface)): \(error.message); remove it with `vpnd down \(rules.interface)`")
        }
    }
}

/// `Masquerade = IFNAME`: the tunnel's traffic leaves IFNAME with IFNAME's address.
final class MasqueradeStep: HostStep {
    let name = "masquerade"
    let rules: FirewallRules.Masquerade
    private let marker: TableMarker
    private let logger: Logger

    init(rules: FirewallRules.Masquerade, marker: TableMarker, logger: Logger) {
        self.rules = rules
        self.marker = marker
        self.logger = logger
    }

    func apply() throws {
        if !rules.sharesTable { try marker.save() }
        do throws(NFTablesError) {
            try NFTables.run(FirewallRules.installMasquerade(rules))
        } catch {
            throw StartupError("Masquerade: nftables refused the nat chain in table inet \(FirewallRules.tableName(for: rules.interface)): \(error.message); vpnd needs root or CAP_NET_ADMIN and a kernel with nf_tables")
        }
        if (try? Netlink.interfaceIndex(named: rules.outInterface)) == nil {
            logger.warning("Masquerade = \(rules.outInterface): no such interface (yet); the rule applies once it exists")
        }
        logger.info("masquerade: what comes from \(rules.interface) leaves \(rules.outInterface) with its address")
    }

    func undo() {
        do throws(NFTablesError) {
            try NFTables.run(FirewallRules.removeMasquerade(rules))
            if !rules.sharesTable { marker.remove() }
        } catch {
            logger.warning(
                "masquerade: could not remove the nat chain of table inet \(FirewallRules.tableName(for: rules.interface)): \(error.message); remove it with `vpnd down \(rules.interface)`")
        }
    }
}

/// `DIR/IFNAME.nftables`: there while table `inet vpnd-IFNAME` may exist (written before vpnd
/// makes the table, removed once it is gone; kept with a persistent kill switch and after a crash),
/// so that a later start without a kill switch or masquerade knows to look for one. Its content is
/// for people; only its presence counts.
struct TableMarker: Sendable {
    let directory: String
    let interface: String
    var path: String { directory + "/" + interface + ".nftables" }

    init(directory: String, interface: String) {
        self.directory = directory
        self.interface = interface
    }

    var exists: Bool { Posix.fileExists(path) }

    func save() throws {
        Posix.makeDirectories(directory)
        let table = FirewallRules.tableName(for: interface)
        guard Posix.replaceFileAtomically(path, "table \(FirewallRules.family) \(table): made by vpnd; `vpnd down` removes both\n") else {
            throw StartupError("cannot write \(path) (the note that table inet \(table) exists); check the run directory")
        }
    }

    func remove() { SmallFiles.remove(path) }
}

/// The forwarding sysctls an earlier value of which `Forward` keeps in `DIR/IFNAME.forwarding`
/// (one `name=value` line each) from before it sets them until they are back, so that a vpnd
/// that crashed is undone by the next start or `vpnd down`.
struct ForwardingRecord: Sendable {
    static let ipv4 = "net.ipv4.ip_forward"
    static let ipv6 = "net.ipv6.conf.all.forwarding"

    let path: String

    init(directory: String, interface: String) {
        path = directory + "/" + interface + ".forwarding"
    }

    /// What the file says: the earlier values, by name; nil when there is no file. Lines that are
    /// not one of the two names with a small number are ignored (the run directory may belong to
    /// the unprivileged account, so only these two values can ever be written back).
    func load() -> [String: String]? {
        guard case .text(let text) = Posix.readOwnFile(path, maxBytes: 4096) else { return nil }
        return Self.parse(text)
    }

    static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, [ipv4, ipv6].contains(String(parts[0])), !parts[1].isEmpty, parts[1].count <= 3,
                parts[1].allSatisfy({ $0.isASCII && $0.isNumber })
            else { continue }
            values[String(parts[0])] = String(parts[1])
        }
        return values
    }

    static func text(_ values: [String: String]) -> String {
        values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
    }

    func save(_ values: [String: String]) -> Bool {
        Posix.makeDirectories(Posix.containingDirectory(of: path))
        return Posix.replaceFileAtomically(path, Self.text(values))
    }

    func remove() { SmallFiles.remove(path) }

    /// Writes the recorded values back; returns the ones that failed, as lines for the log.
    func restore(_ values: [String: String]) -> [String] {
        var failures: [String] = []
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            do throws(IOError) { try Sysctl.write(key, value) } catch { failures.append("\(key): \(error)") }
        }
        return failures
    }
}

/// `Forward = on`: IPv4 forwarding (and IPv6 forwarding when the tunnel carries IPv6) on in this
/// network namespace, back to the earlier values when vpnd stops.
final class ForwardingStep: HostStep {
    let name = "forwarding"
    private let interface: String
    private let record: ForwardingRecord
    private let keys: [String]
    private let logger: Logger
    private let previous = Mutex<[String: String]>([:])

    init(interface: String, record: ForwardingRecord, ipv6: Bool, logger: Logger) {
        self.interface = interface
        self.record = record
        self.keys = [ForwardingRecord.ipv4] + (ipv6 ? [ForwardingRecord.ipv6] : [])
        self.logger = logger
    }

    func apply() throws {
        // A record left by a vpnd that crashed holds the values from before it.
        let recorded = record.load() ?? [:]
        if !recorded.isEmpty {
            logger.info("forwarding settings of an earlier vpnd found in \(record.path): restoring those when this one stops")
        }
        var earlier = recorded
        for key in keys where earlier[key] == nil {
            guard let value = Sysctl.read(key) else {
                if key == ForwardingRecord.ipv6 {
                    logger.info("Forward: IPv6 is off in this kernel (no \(Sysctl.path(of: key))); forwarding IPv4 only")
                    continue
                }
                throw StartupError("Forward: cannot read \(Sysctl.path(of: key)); is /proc mounted?")
            }
            earlier[key] = value
        }
        guard record.save(earlier) else {
            throw StartupError("Forward: cannot write \(record.path) (the values to restore at stop); check the run directory")
        }
        for key in keys where earlier[key] != nil {
            do throws(IOError) {
                try Sysctl.write(key, "1")
            } catch {
                _ = record.restore(earlier)
                record.remove()
                throw StartupError("Forward: \(error)")
            }
        }
        previous.withLock { $0 = earlier }
        logger.info(
            "forwarding on: \(keys.filter { earlier[$0] != nil }.map { "\($0)=1 (was \(earlier[$0]!))" }.joined(separator: ", "))")
        warnAboutForwardDrops()
    }

    func undo() {
        let earlier = previous.withLock { $0 }
        let failures = record.restore(earlier)
        if failures.isEmpty {
            record.remove()
            logger.info("forwarding back to \(ForwardingRecord.text(earlier).split(separator: "\n").joined(separator: ", "))")
        } else {
            logger.warning("Forward: could not restore \(failures.joined(separator: "; ")); `vpnd down` retries from \(record.path)")
        }
    }

    /// nftables evaluates every table's forward chain and a drop in any is final: an accept in
    /// vpnd's own table could not overrule it, so vpnd adds none and says where the drop is.
    private func warnAboutForwardDrops() {
        guard let text = try? NFTables.listJSON("list chains"), let chains = FirewallRules.forwardDropChains(fromJSON: text),
            !chains.isEmpty
        else { return }
        logger.warning(
            "Forward: chain \(chains.joined(separator: ", ")) drops forwarded packets by default; accept the tunnel's there (iifname \"\(interface)\" accept; oifname \"\(interface)\" ct state established,related accept): an accept in vpnd's own table cannot overrule it")
    }
}

/// What an earlier vpnd for this interface left and this run does not take over: its table
/// (`KillSwitch = persistent`, a crash) when this run has no kill switch and no masquerade, its
/// forwarding record (a crash) when this run does not forward. Removed at start; nothing to undo.
/// Failing to ask nftables is not an error here: a host without nf_tables has no table to remove.
final class LeftoverStep: HostStep {
    let name = "leftovers of an earlier vpnd"
    private let interface: String
    private let marker: TableMarker?
    private let record: ForwardingRecord?
    private let logger: Logger

    init(interface: String, marker: TableMarker?, record: ForwardingRecord?, logger: Logger) {
        self.interface = interface
        self.marker = marker
        self.record = record
        self.logger = logger
    }

    func apply() throws {
        // nftables is asked only when the marker says an earlier vpnd made a table: a vpnd that
        // never uses these keys never loads libnftables' code or the kernel's nf_tables.
        if let marker, marker.exists {
            switch FirewallSetup.tableExists(interface: interface) {
            case .success(false): marker.remove()
            case .success(true):
                do throws(NFTablesError) {
                    try NFTables.run(FirewallRules.removeTable(interface: interface))
                    marker.remove()
                    logger.info(
                        "removed table inet \(FirewallRules.tableName(for: interface)), left by an earlier vpnd (KillSwitch = persistent, or a crash); this configuration has neither KillSwitch nor Masquerade")
                } catch {
                    logger.warning(
                        "table inet \(FirewallRules.tableName(for: interface)) left by an earlier vpnd could not be removed: \(error.message); remove it with `vpnd down \(interface)` once vpnd stops")
                }
            case .failure(let error):
                logger.warning(
                    "cannot check for table inet \(FirewallRules.tableName(for: interface)) that an earlier vpnd left (\(marker.path)): \(error.message)")
            }
        }
        if let record, let values = record.load() {
            let failures = record.restore(values)
            if failures.isEmpty {
                record.remove()
                logger.info("forwarding settings restored from \(record.path), left by an earlier vpnd that did not stop cleanly")
            } else {
                logger.warning("could not restore the forwarding settings in \(record.path): \(failures.joined(separator: "; "))")
            }
        }
    }

    func undo() {}
}
