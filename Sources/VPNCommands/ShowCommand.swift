// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux

/// `vpnd show`: the status of running tunnels, like `wg show`.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show running tunnels: keys, endpoints, latest handshake, traffic and drops.",
        discussion: "Asks each running vpnd over its control socket, /run/vpnd/NAME.sock (or $VPND_RUN_DIR/NAME.sock); root only.")

    @Argument(help: "The interface to show (default: every running vpnd).")
    var interface: String?

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func run() throws {
        let runDirectory = ControlSocket.directory
        var names: [String]
        if let interface {
            names = [interface]
        } else {
            let entries = Posix.directoryEntries(runDirectory) ?? []
            names = entries.filter { $0.hasSuffix(".sock") }.map { String($0.dropLast(5)) }.sorted()
        }
        if names.isEmpty {
            Posix.printError("vpnd show: no running vpnd found in \(runDirectory)\n")
            throw ExitCode(1)
        }
        var failed = false
        for (i, name) in names.enumerated() {
            let path = runDirectory + "/" + name + ".sock"
            guard let reply = UnixStreamClient.exchange(path: path, request: json ? "json\n" : "text\n") else {
                let hint = Posix.canRead(runDirectory) ? "is it running?" : "run as root"
                Posix.printError("vpnd show: cannot reach vpnd for \(name) at \(path); \(hint)\n")
                failed = true
                continue
            }
            if i > 0 && !json { print("") }
            print(reply, terminator: "")
        }
        if failed { throw ExitCode(1) }
    }
}
