// SPDX-License-Identifier: MIT
import ArgumentParser
import Glibc

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
            guard let fd = ControlSocket.connect(path: path) else {
                let hint = access(runDirectory, R_OK) == 0 ? "is it running?" : "run as root"
                Posix.printError("vpnd show: cannot reach vpnd for \(name) at \(path); \(hint)\n")
                failed = true
                continue
            }
            defer { close(fd) }
            let request = Array((json ? "json\n" : "text\n").utf8)
            _ = request.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            var reply: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(fd, &chunk, chunk.count)
                if count <= 0 { break }
                reply.append(contentsOf: chunk[0..<count])
            }
            if i > 0 && !json { print("") }
            print(String(decoding: reply, as: UTF8.self), terminator: "")
        }
        if failed { throw ExitCode(1) }
    }
}
