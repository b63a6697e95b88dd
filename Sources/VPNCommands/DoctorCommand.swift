// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux

/// `vpnd doctor`: why a tunnel is not up, from the counters of the running daemon.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Explain why a running tunnel is not up, from the daemon's own counters.",
        discussion: """
            Asks the running vpnd (over its control socket, like `vpnd show`) and prints, per peer: \
            healthy (a session that carries traffic), or why there is no session: initiations that \
            went unanswered (a wrong Endpoint, a firewall, or a server that does not know our key), \
            responses that did not authenticate (different pre-shared keys), answers the peer never \
            confirmed, cookie replies (the server is under load); per interface: initiations for \
            another public key (mac1: this end's key is printed), from keys that are no [Peer] here \
            (each key is printed, to add it), that did not decrypt (a tun end against a tap end) or \
            carried stale timestamps; the MTU and path MTU, the latest handshake, and the three most \
            frequent drops, each explained. Exit status: 0 when it found no problem (every peer \
            with an Endpoint has a session, no peer left our answers unconfirmed, and none of those \
            refusals was counted), 1 when it found one, 2 when it cannot reach the daemon \
            (docs/operations.md, "When the tunnel does not come up").
            """)

    @Argument(help: "The interface (default: the only running vpnd).")
    var interface: String?

    func run() throws {
        let (name, reply) = try ControlSocket.ask("doctor", interface: interface, command: "doctor", failure: 2)
        // The first line is the exit status (`status 0` or `status 1`), the rest the diagnosis.
        let firstLine = reply.prefix { $0 != "\n" }
        guard firstLine.hasPrefix(Doctor.statusPrefix), let status = Int32(firstLine.dropFirst(Doctor.statusPrefix.count))
        else {
            Posix.printError(
                "vpnd doctor: \(name): " + (reply.hasPrefix("error: ") ? String(reply.dropFirst(7))
                    : "the running vpnd does not know `doctor` (an older version): restart it with this one\n"))
            throw ExitCode(2)
        }
        print(reply.dropFirst(firstLine.count + 1), terminator: "")
        if status != 0 { throw ExitCode(status) }
    }
}
