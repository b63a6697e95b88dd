// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux

/// `vpnd reload`: the running daemon re-reads its config file and applies the difference live.
struct ReloadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Re-read a running vpnd's config file and apply the difference without dropping anyone.",
        discussion: """
            Like `wg syncconf`: peers added, removed or changed, keys, AllowedIPs and their routes, \
            endpoints, keepalive, ListenPort, Address and MTU (up to the MTU vpnd started with) apply \
            at once; an unchanged peer keeps its session; the peers' names (`# NAME`) follow the file. \
            A file with an error, or a change of Mode, Transport, Name, Bridge, User, KeepNetAdmin, \
            MSSClamp, PathMTUDiscovery or MetricsListen, changes nothing (exit status 1, one line). \
            SIGHUP does the same.
            """)

    @Argument(help: "The interface to reload (default: the only running vpnd).")
    var interface: String?

    func run() throws {
        let (name, reply) = try ControlSocket.ask("reload", interface: interface, command: "reload")
        if reply.hasPrefix("ok: ") {
            print("\(name): " + reply.dropFirst(4), terminator: "")
            return
        }
        Posix.printError("vpnd reload: \(name): " + (reply.hasPrefix("refused: ") ? String(reply.dropFirst(9)) : reply))
        throw ExitCode(1)
    }
}
