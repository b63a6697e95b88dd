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
            transport, initiations from unknown keys, the handshake thread's backlog, and the \
            data-plane loop time (a histogram, and its maximum since the previous scrape). Labels: \
            interface, public_key and name (the peer's `# NAME` in the config, empty without one) on \
            every per-peer sample, reason on drops. For node_exporter: \
            `vpnd metrics > /var/lib/node_exporter/vpnd.prom.tmp && mv /var/lib/node_exporter/vpnd.prom.tmp \
            /var/lib/node_exporter/vpnd.prom` from a timer. For Prometheus itself, `MetricsListen = \
            127.0.0.1:9586` in [Interface] serves the same text at http://127.0.0.1:9586/metrics.
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
