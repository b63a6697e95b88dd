// SPDX-License-Identifier: MIT
import ArgumentParser
import Logging
import VPNLinux

/// `vpnd down`: removes what a stopped vpnd left on the host: its nftables table (a
/// `KillSwitch = persistent`, or whatever a crash left) and its changed forwarding settings.
struct DownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Remove what a stopped vpnd left on the host: its kill switch (KillSwitch = persistent, or after a crash) and forwarding settings.",
        discussion: """
            Deletes nftables table inet vpnd-INTERFACE (the kill switch and masquerade of that \
            interface), the rules, routes and tables ip/ip6 vpnd-INTERFACE of a full tunnel whose vpnd \
            did not stop cleanly (listed in $VPND_RUN_DIR/INTERFACE.host), and sets the forwarding sysctls back to the values recorded in \
            $VPND_RUN_DIR/INTERFACE.forwarding (left only by a vpnd with Forward = on that did not \
            stop cleanly), and prints each thing it removed. Nothing to remove is no error. Without \
            INTERFACE it takes the only interface that left something. Refused (exit status 1, one \
            line) while a vpnd runs for INTERFACE (stop it: its table goes with it, unless \
            KillSwitch = persistent), when several interfaces left something and none is named, and \
            without the permission to change nftables (root or CAP_NET_ADMIN). Acts in the network \
            namespace it runs in.
            """)

    @Argument(help: "The interface whose leftovers to remove (default: the only one that left any).")
    var interface: String?

    func run() throws {
        let runDirectory = ControlSocket.directory
        // Asked first: libnftables itself prints a line of its own to stderr when refused.
        guard PrivilegeDrop.credentials().effectiveCapabilities & (1 << 12) != 0 else {  // CAP_NET_ADMIN
            throw failure("changing nftables needs root or CAP_NET_ADMIN (in this network namespace's user namespace)")
        }
        let listed: String
        do throws(NFTablesError) {
            listed = try NFTables.listJSON("list tables \(FirewallRules.family)")
        } catch {
            throw failure("cannot list the nftables tables: \(error.message); vpnd down needs root or CAP_NET_ADMIN")
        }
        guard let tables = FirewallRules.tables(fromJSON: listed) else {
            throw failure("libnftables listed its tables in JSON vpnd cannot read")
        }
        let withTables = Set(tables.filter { $0.family == FirewallRules.family }.compactMap { FirewallRules.interface(ofTable: $0.name) })
        let withRecords = Set((Posix.directoryEntries(runDirectory) ?? []).filter { $0.hasSuffix(".forwarding") }.map { String($0.dropLast(11)) })
            .union((Posix.directoryEntries(runDirectory) ?? []).filter { $0.hasSuffix(".host") }.map { String($0.dropLast(5)) })

        let name: String
        if let interface {
            guard Self.isInterfaceName(interface) else {
                throw failure("\"\(interface)\" is not an interface name (1 to 15 letters, digits, \"_\", \".\" and \"-\")")
            }
            name = interface
        } else {
            let candidates = withTables.union(withRecords).sorted()
            guard candidates.count <= 1 else {
                throw failure("\(candidates.count) interfaces left something (\(candidates.joined(separator: ", "))); name one")
            }
            guard let only = candidates.first else {
                print("nothing to remove")
                return
            }
            name = only
        }
        if UnixStreamClient.exchange(path: runDirectory + "/" + name + ".sock", request: "json\n") != nil {
            throw failure("vpnd for \(name) is running; stop it first (its table goes with it, unless KillSwitch = persistent)")
        }

        var removed: [String] = []
        if withTables.contains(name) {
            do throws(NFTablesError) {
                try NFTables.run(FirewallRules.removeTable(interface: name))
            } catch {
                throw failure("cannot remove table inet \(FirewallRules.tableName(for: name)): \(error.message); vpnd down needs root or CAP_NET_ADMIN")
            }
            removed.append("removed table inet \(FirewallRules.tableName(for: name))")
        }
        TableMarker(directory: runDirectory, interface: name).remove()
        // A full tunnel's rules and routes (its marker file) and its conntrack tables ip/ip6.
        let conntrackTables = (try? NFTables.listJSON("list tables")).flatMap { FirewallRules.tables(fromJSON: $0) }?
            .contains { ($0.family == "ip" || $0.family == "ip6") && $0.name == FullTunnelConntrack.tableName(for: name) } ?? false
        let marker = HostMarker.path(runDirectory: runDirectory, name: name)
        if Posix.fileExists(marker) {
            do {
                try HostRouting.recover(runDirectory: runDirectory, name: name, logger: Logger(label: "vpnd down"))
            } catch {
                throw failure("\(error)")
            }
            if !Posix.fileExists(marker) { removed.append("removed the full tunnel's rules and routes (listed in \(marker))") }
        }
        if conntrackTables {
            do throws(NFTablesError) {
                try NFTables.run(FullTunnelConntrack.removal(interface: name))
            } catch {
                throw failure("cannot remove tables ip/ip6 \(FullTunnelConntrack.tableName(for: name)): \(error.message)")
            }
            removed.append("removed tables ip and ip6 \(FullTunnelConntrack.tableName(for: name))")
        }
        let record = ForwardingRecord(directory: runDirectory, interface: name)
        if let values = record.load() {
            let failures = record.restore(values)
            guard failures.isEmpty else { throw failure("cannot restore the forwarding settings of \(record.path): \(failures.joined(separator: "; "))") }
            record.remove()
            removed.append(
                "restored \(ForwardingRecord.text(values).split(separator: "\n").joined(separator: ", ")) (from \(record.path))")
        }
        if removed.isEmpty {
            print("\(name): nothing to remove")
        } else {
            for line in removed { print("\(name): \(line)") }
        }
    }

    private func failure(_ message: String) -> ExitCode {
        Posix.printError("vpnd down: \(message)\n")
        return ExitCode(1)
    }

    /// What vpnd's `Name` accepts (ConfigValues.interfaceName).
    static func isInterfaceName(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        return !utf8.isEmpty && utf8.count <= 15 && text != "." && text != ".."
            && utf8.allSatisfy { c in
                (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                    || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "-")
            }
    }
}
