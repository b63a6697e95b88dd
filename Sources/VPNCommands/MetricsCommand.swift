// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux

/// `vpnd metrics`: every running vpnd's counters as Prometheus text, for node_exporter's textfile
/// collector or any scraper that runs a command.
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Print the counters of running tunnels in the Prometheus text format.",
        discussion: """
            Per peer: bytes and packets both ways, the latest handshake (Unix time), handshakes, \
            cookie replies, whether a session is usable, the path MTU, drops by reason, handshake \
            initiations sent, responses received, failures (initiations unanswered) and initiations \
            answered; per interface: the peer count, the drops that belong to no peer or to the \
            transport, and initiations from unknown keys. Labels: interface, public_key, reason. For node_exporter: `vpnd metrics > /var/lib/node_exporter/vpnd.prom.tmp && \
            mv /var/lib/node_exporter/vpnd.prom.tmp /var/lib/node_exporter/vpnd.prom` from a timer.
            """)

    @Argument(help: "The interface (default: every running vpnd).")
    var interface: String?

    func run() throws {
        let runDirectory = ControlSocket.directory
        let names = interface.map { [$0] } ?? ControlSocket.interfaces(in: runDirectory)
        if names.isEmpty {
            Posix.printError("vpnd metrics: no running vpnd found in \(runDirectory)\n")
            throw ExitCode(1)
        }
        var texts: [String] = []
        var failed = false
        for name in names {
            let path = runDirectory + "/" + name + ".sock"
            guard let reply = UnixStreamClient.exchange(path: path, request: "metrics\n"), reply.hasPrefix("# HELP") else {
                let hint = Posix.canRead(runDirectory) ? "is it running?" : "run as root"
                Posix.printError("vpnd metrics: cannot reach vpnd for \(name) at \(path); \(hint)\n")
                failed = true
                continue
            }
            texts.append(reply)
        }
        print(MetricsFormatter.merge(texts), terminator: "")
        if failed { throw ExitCode(1) }
    }
}
