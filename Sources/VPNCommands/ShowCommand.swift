// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux

/// `vpnd show`: the status of running tunnels, like `wg show`.
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show running tunnels: keys, endpoints, latest handshake, traffic and drops.",
        discussion: "Asks each running vpnd over its control socket, /run/vpnd/NAME.sock (or $VPND_RUN_DIR/NAME.sock); root only.")

    @Argument(
        help: ArgumentHelp(
            "The interface to show (default: every running vpnd), then optionally `dump`.",
            discussion: "`vpnd show dump` and `vpnd show NAME dump` print `wg show all dump` / `wg show NAME dump`'s tab-separated lines (keys base64, latest handshake in Unix seconds; the private and pre-shared keys read `(hidden)`), so the exporters and scripts written for wg read vpnd too.",
            valueName: "interface"))
    var words: [String] = []

    @Flag(name: .long, help: "Print JSON for scripts.")
    var json = false

    func validate() throws {
        if words.count > 2 || (words.count == 2 && words[1] != "dump") {
            throw ValidationError("expected `vpnd show [NAME] [dump]`, got `\(words.joined(separator: " "))`")
        }
        if json && words.last == "dump" { throw ValidationError("--json and dump are two formats; pick one") }
    }

    func run() throws {
        let dump = words.last == "dump"
        let interface = dump ? (words.count == 2 ? words[0] : nil) : words.first
        let runDirectory = ControlSocket.directory
        let names = interface.map { [$0] } ?? ControlSocket.interfaces(in: runDirectory)
        if names.isEmpty {
            Posix.printError("vpnd show: no running vpnd found in \(runDirectory)\n")
            throw ExitCode(1)
        }
        var failed = false
        for (i, name) in names.enumerated() {
            let path = runDirectory + "/" + name + ".sock"
            let request = dump ? "dump\n" : json ? "json\n" : "text\n"
            guard let reply = UnixStreamClient.exchange(path: path, request: request) else {
                let hint = Posix.canRead(runDirectory) ? "is it running?" : "run as root"
                Posix.printError("vpnd show: cannot reach vpnd for \(name) at \(path); \(hint)\n")
                failed = true
                continue
            }
            if dump {
                // `wg show all dump` starts every line with the interface; `wg show NAME dump` does not.
                let lines = reply.split(separator: "\n")
                for line in lines { print(interface == nil ? "\(name)\t\(line)" : String(line)) }
                continue
            }
            if i > 0 && !json { print("") }
            print(reply, terminator: "")
        }
        if failed { throw ExitCode(1) }
    }
}
