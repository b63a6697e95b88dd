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
        let runDirectory = ControlSocket.directory
        let names = interface.map { [$0] } ?? ControlSocket.interfaces(in: runDirectory)
        guard names.count == 1, let name = names.first else {
            Posix.printError(
                names.isEmpty ? "vpnd reload: no running vpnd found in \(runDirectory)\n"
                    : "vpnd reload: \(names.count) vpnd run here (\(names.sorted().joined(separator: ", "))); name one\n")
            throw ExitCode(1)
        }
        let path = runDirectory + "/" + name + ".sock"
        guard let reply = UnixStreamClient.exchange(path: path, request: "reload\n"), !reply.isEmpty else {
            let hint = Posix.canRead(runDirectory) ? "is it running?" : "run as root"
            Posix.printError("vpnd reload: cannot reach vpnd for \(name) at \(path); \(hint)\n")
            throw ExitCode(1)
        }
        if reply.hasPrefix("ok: ") {
            print("\(name): " + reply.dropFirst(4), terminator: "")
            return
        }
        Posix.printError("vpnd reload: \(name): " + (reply.hasPrefix("refused: ") ? String(reply.dropFirst(9)) : reply))
        throw ExitCode(1)
    }
}
