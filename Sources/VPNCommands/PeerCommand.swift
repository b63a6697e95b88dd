// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNBasics
import VPNCore
import VPNCrypto
import VPNLinux

/// `vpnd peer`: a server's clients, one command each: add (keys, address, config, QR code),
/// list, remove. The server's file is the truth; the running daemon follows it by a reload.
struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Add, list or remove a server's clients: the config file and the running vpnd together.",
        discussion: """
            `vpnd peer add alice --endpoint vpn.example.com:51820` makes alice's keys, picks her \
            address, appends a [Peer] block named "# alice" to the server's config file (atomically, \
            every other line kept as it was), applies it to the running vpnd (a reload: nobody else \
            is disturbed) and prints alice's config, or its QR code with --qr. The server's file is \
            the one of the only running vpnd unless --config names it.
            """,
        subcommands: [Add.self, List.self, Remove.self])
}

/// The server's config file a `vpnd peer` command edits, and the running daemon that uses it.
struct ServerFile {
    let path: String
    let text: String
    let config: Config

    static func open(_ given: String?, command: String) throws -> ServerFile {
        let path: String
        if let given {
            path = given
        } else {
            let directory = ControlSocket.directory
            let paths = ControlSocket.interfaces(in: directory).compactMap { name -> String? in
                guard let reply = UnixStreamClient.exchange(path: directory + "/" + name + ".sock", request: "config\n"),
                    reply.hasPrefix("/")
                else { return nil }
                return String(reply.dropLast())
            }
            guard paths.count == 1 else {
                throw PeerCommandError(
                    command,
                    paths.isEmpty ? "no running vpnd server found; name its config file with --config FILE"
                        : "\(paths.count) vpnd run here; name the config file with --config FILE")
            }
            path = paths[0]
        }
        guard let text = Posix.readTextFile(path) else {
            throw PeerCommandError(
                command, Posix.fileExists(path) ? "\(path) cannot be read; run as root or check its permissions" : "\(path) does not exist")
        }
        let config: Config
        do throws(ConfigError) {
            config = try Config.parse(text, fileName: path)
        } catch {
            throw PeerCommandError(command, "\(error.description) (fix the file first; nothing was changed)")
        }
        guard config.interface.listenPort != nil else {
            throw PeerCommandError(command, "\(path) has no ListenPort: it is a client's file, not a server's")
        }
        return ServerFile(path: path, text: text, config: config)
    }

    var socketPath: String { ControlSocket.directory + "/" + config.interface.name + ".sock" }

    /// Writes `newText` over the file and has the running daemon (if any) reload it; when the
    /// daemon refuses, the old text goes back and the refusal is thrown. Returns what the daemon
    /// said, or nil when none runs.
    func commit(_ newText: String, command: String) throws -> String? {
        do throws(FileAccessError) {
            try SmallFiles.replace(path, bytes: Array(newText.utf8))
        } catch {
            throw PeerCommandError(command, KeyFileError(path: path, error).description)
        }
        guard let reply = UnixStreamClient.exchange(path: socketPath, request: "reload\n"), !reply.isEmpty else {
            return nil
        }
        if reply.hasPrefix("ok: ") { return String(reply.dropFirst(4).prefix { $0 != "\n" }) }
        try? SmallFiles.replace(path, bytes: Array(text.utf8))
        let reason = reply.hasPrefix("refused: ") ? reply.dropFirst(9) : Substring(reply)
        throw PeerCommandError(
            command, "the running vpnd refused the change, so \(path) is back as it was: \(reason.prefix { $0 != "\n" })")
    }

    /// Runs `body` holding the lock of the file's directory (two edits take turns).
    static func locked<R>(_ path: String?, command: String, _ body: () throws -> R) throws -> R {
        let directory = Posix.containingDirectory(of: path ?? ".")
        guard let result = try Posix.withDirectoryLock(directory, body) else {
            throw PeerCommandError(command, "cannot open \(directory) to lock it; run as root")
        }
        return result
    }
}

struct PeerCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ command: String, _ message: String) { description = "vpnd peer \(command): \(message)" }
}

/// Prints a command's one-line error and exits 1.
private func failing(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as PeerCommandError {
        Posix.printError(error.description + "\n")
        throw ExitCode(1)
    }
}

extension PeerCommand {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Make a client: keys, an address, a [Peer] in the server's file, applied live; print its config.",
            discussion: """
                The client's private key is printed once (in its config) and not kept on the server \
                unless --keep-key DIR. The address is the lowest free one in each of the server's \
                Address subnets (IPv4 and IPv6). The client's AllowedIPs are the server's subnets \
                unless --allowed-ips says otherwise (0.0.0.0/0, ::/0 for a full tunnel in the \
                WireGuard apps). Example: vpnd peer add alice --endpoint vpn.example.com:51820 --qr
                """)

        @Argument(help: "The client's name (letters, digits, . _ @ + -); written as \"# NAME\" in the server's file.")
        var name: String

        @Option(name: [.short, .long], help: ArgumentHelp("The server's config file (default: the running vpnd's).", valueName: "file"))
        var config: String?

        @Option(help: ArgumentHelp("Where clients reach the server: HOST:PORT (required).", valueName: "host:port"))
        var endpoint: String?

        @Option(help: ArgumentHelp("auto, or the client's addresses (comma-separated).", valueName: "auto|ip,..."))
        var address = "auto"

        @Option(help: ArgumentHelp("What the client routes into the tunnel (default: the server's subnets).", valueName: "prefix,..."))
        var allowedIps: String?

        @Option(help: ArgumentHelp("DNS servers for the client (its DNS line, applied while its tunnel is up).", valueName: "ip,..."))
        var dns: String?

        @Flag(help: "Add a pre-shared key (both files get it).")
        var psk = false

        @Option(help: ArgumentHelp("PersistentKeepalive in the client's file; 0 for none.", valueName: "seconds"))
        var keepalive = 25

        @Option(help: ArgumentHelp("vpnd, or wg-quick (what the WireGuard apps import).", valueName: "format"))
        var format = "vpnd"

        @Flag(help: "Print the client's config as a QR code for the WireGuard phone apps.")
        var qr = false

        @Option(help: ArgumentHelp("Also keep the client's private key in DIR/NAME.key (mode 0600).", valueName: "dir"))
        var keepKey: String?

        func run() throws {
            try failing {
                try ServerFile.locked(config, command: "add") { try add() }
            }
        }

        func add() throws {
            let command = "add"
            func fail(_ message: String) -> PeerCommandError { PeerCommandError(command, message) }
            do throws(PeerProvisioning.Failure) {
                try PeerProvisioning.check(name: name)
            } catch { throw fail(error.description) }
            guard let outputFormat = PeerProvisioning.ClientFile.Format(rawValue: format) else {
                throw fail("--format \(format) is not known; use vpnd or wg-quick")
            }
            guard let endpoint else {
                throw fail("--endpoint HOST:PORT is required: where clients reach this server (such as vpn.example.com:51820)")
            }
            guard EndpointSpec(endpoint) != nil else {
                throw fail("--endpoint \(endpoint) is not HOST:PORT (such as vpn.example.com:51820 or [2001:db8::1]:51820)")
            }
            guard (0...65535).contains(keepalive) else { throw fail("--keepalive \(keepalive) is not 0 to 65535 seconds") }
            let server = try ServerFile.open(config, command: command)
            let interface = server.config.interface
            if let twin = server.config.peers.first(where: { $0.name == name }) {
                throw fail("\(server.path) already has a peer named \(name) (line \(twin.line)); pick another name or remove it first")
            }
            if interface.mode == .tap && !server.config.peers.isEmpty {
                throw fail("\(server.path) is a tap server, which has exactly one peer, and it has one")
            }
            if psk, let mode = SmallFiles.mode(server.path), mode & 0o077 != 0 {
                throw fail("\(server.path) is readable by group or others, and --psk puts a secret in it; run: chmod 600 \(server.path)")
            }
            let serverKey: SecretKey
            do {
                serverKey = try DaemonRunner.resolveKey(
                    interface.privateKey, base: Posix.containingDirectory(of: server.path), secret: .privateKey)
            } catch { throw fail("the server's private key: \(error)") }

            // Everything that can be refused is checked before a file is touched.
            let addresses: [IPPrefix]
            let allowed: [IPPrefix]
            do throws(PeerProvisioning.Failure) {
                if address == "auto" {
                    addresses = try PeerProvisioning.freeAddresses(in: interface.addresses, peers: server.config.peers)
                } else {
                    addresses = try Self.prefixes(address, option: "--address", hosts: interface.addresses)
                    try PeerProvisioning.check(addresses: addresses, interfaceAddresses: interface.addresses, peers: server.config.peers)
                }
                if let allowedIps {
                    allowed = try Self.prefixes(allowedIps, option: "--allowed-ips", hosts: nil)
                } else {
                    allowed = Array(Set(interface.addresses.map(\.masked))).sorted()
                }
            } catch { throw fail(error.description) }
            if allowed.isEmpty { throw fail("the client would route nothing: give --allowed-ips (such as 10.8.0.0/24)") }
            let dnsServers = dns.map { $0.split(separator: ",").map { String($0.trimmingSpaces) } } ?? []
            for server in dnsServers where IPAddress(server) == nil {
                throw fail("--dns \(server) is not an IP address")
            }
            let keyPath = keepKey.map { $0 + "/" + name + ".key" }
            if let keyPath, Posix.fileExists(keyPath) { throw fail("\(keyPath) exists; remove it or choose another --keep-key DIR") }

            guard Sodium.initialise() else { throw fail("libsodium could not initialise (no source of random numbers)") }
            var entropy = SystemEntropy()
            let clientKey = X25519.generatePrivateKey(using: &entropy)
            let presharedKey = psk ? SecretKey(random: &entropy) : nil
            let client = PeerProvisioning.ClientFile(
                name: name, privateKey: clientKey, addresses: addresses, serverPublicKey: X25519.publicKey(for: serverKey),
                presharedKey: presharedKey, endpoint: endpoint, allowedIPs: allowed, dns: dnsServers,
                persistentKeepalive: keepalive, mode: interface.mode, transport: interface.transport, mtu: interface.mtu,
                cipher: interface.cipher)
            let clientText: String
            do throws(PeerProvisioning.Failure) {
                clientText = try PeerProvisioning.clientText(client, format: outputFormat, serverName: interface.name)
            } catch { throw fail(error.description) }
            var qrText: String?
            if qr {
                guard let code = QRCode(clientText) else { throw fail("the config is too long for a QR code; drop --qr") }
                qrText = code.terminalText()
            }

            let block = PeerProvisioning.serverBlock(
                name: name, publicKey: X25519.publicKey(for: clientKey), presharedKey: presharedKey, addresses: addresses)
            let newText = PeerProvisioning.appending(block, to: server.text)
            do throws(ConfigError) {
                let check = try Config.parse(newText, fileName: server.path)
                guard check.peers.count == server.config.peers.count + 1, check.peers.last?.name == name else {
                    throw ConfigError(fileName: server.path, line: 0, message: "the new [Peer] block did not read back")
                }
            } catch { throw fail("\(error.description); nothing was changed") }

            let applied = try server.commit(newText, command: command)
            if let keyPath, let directory = keepKey {
                do throws(FileAccessError) {
                    try SmallFiles.makeDirectories(directory)
                    try SmallFiles.createPrivate(keyPath, bytes: Array((KeyEncoding.encode(clientKey) + "\n").utf8), replace: false)
                } catch {
                    Posix.printError("vpnd peer add: warning: \(KeyFileError(path: keyPath, error).description); the key is only in the config printed below\n")
                }
            }
            if SmallFiles.standardOutputIsExposedFile {
                Posix.printError(
                    "vpnd peer add: warning: standard output is a file that group or others can read, and it gets a private key; run chmod 600 on it\n")
            }
            print(qrText ?? clientText, terminator: "")
            let where_ = addresses.map { $0.address.description }.joined(separator: ", ")
            Posix.printError(
                "vpnd peer add: \(name) (\(where_)) added to \(server.path); "
                    + (applied.map { "\(interface.name): \($0)" } ?? "\(interface.name) is not running: it applies when vpnd starts") + "\n")
        }

        /// Comma-separated prefixes; a bare address takes the length of the server subnet that
        /// holds it (with `hosts`), else a host length.
        static func prefixes(_ text: String, option: String, hosts: [IPPrefix]?) throws(PeerProvisioning.Failure) -> [IPPrefix] {
            var out: [IPPrefix] = []
            for item in text.split(separator: ",").map({ $0.trimmingSpaces }) where !item.isEmpty {
                if let prefix = IPPrefix(item), item.contains("/") {
                    out.append(hosts == nil ? prefix.masked : prefix)
                } else if let address = IPAddress(item) {
                    let subnet = hosts?.first { $0.contains(address) }
                    out.append(IPPrefix(address: address, length: Int(subnet?.length ?? UInt8(address.bitWidth)))!)
                } else {
                    throw PeerProvisioning.Failure("\(option) \(item) is not an IP address or prefix (such as 10.8.0.0/24)")
                }
            }
            return out
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the server's peers: name, public key, addresses, latest handshake, transfer.")

        @Option(name: [.short, .long], help: ArgumentHelp("The server's config file (default: the running vpnd's).", valueName: "file"))
        var config: String?

        func run() throws {
            try failing {
                let server = try ServerFile.open(config, command: "list")
                let dump = UnixStreamClient.exchange(path: server.socketPath, request: "dump\n")
                print(PeerListing.table(config: server.config, dump: dump, now: wallClockNow().seconds), terminator: "")
                if dump == nil {
                    Posix.printError("vpnd peer list: \(server.config.interface.name) is not running: no handshake or transfer figures\n")
                }
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove a peer (by name or public key) from the server's file and the running vpnd.")

        @Argument(help: "The peer's name or public key.")
        var peer: String

        @Option(name: [.short, .long], help: ArgumentHelp("The server's config file (default: the running vpnd's).", valueName: "file"))
        var config: String?

        func run() throws {
            try failing {
                try ServerFile.locked(config, command: "remove") {
                    let server = try ServerFile.open(config, command: "remove")
                    let key = try? KeyEncoding.decodePublicKey(peer)
                    let matches = server.config.peers.filter { $0.name == peer || $0.publicKey == key }
                    guard let target = matches.first else {
                        throw PeerCommandError("remove", "\(server.path) has no peer named \(peer); `vpnd peer list` shows them")
                    }
                    guard matches.count == 1 else {
                        throw PeerCommandError("remove", "\(matches.count) peers are named \(peer); give the public key of the one to remove")
                    }
                    let newText = PeerProvisioning.removingSection(at: target.line, from: server.text)
                    guard let check = try? Config.parse(newText, fileName: server.path),
                        check.peers.count == server.config.peers.count - 1,
                        !check.peers.contains(where: { $0.publicKey == target.publicKey })
                    else {
                        throw PeerCommandError("remove", "the file would not read back without the peer; nothing was changed")
                    }
                    let applied = try server.commit(newText, command: "remove")
                    let label = target.name ?? KeyEncoding.encode(target.publicKey)
                    print(
                        "\(label) removed from \(server.path); "
                            + (applied.map { "\(server.config.interface.name): \($0)" } ?? "\(server.config.interface.name) is not running"))
                }
            }
        }
    }
}

/// `vpnd peer list`'s table: the file's peers (and peers only the daemon has, added by `wg set`),
/// with the daemon's figures from its `dump` answer.
enum PeerListing {
    static func table(config: Config, dump: String?, now: Int64) -> String {
        struct Live { var endpoint: String, allowed: String, latest: Int64, received: UInt64, sent: UInt64 }
        var live: [String: Live] = [:]
        var order: [String] = []
        for line in (dump ?? "").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 8 else { continue }
            live[fields[0]] = Live(
                endpoint: fields[2], allowed: fields[3], latest: Int64(fields[4]) ?? 0, received: UInt64(fields[5]) ?? 0, sent: UInt64(fields[6]) ?? 0)
            order.append(fields[0])
        }
        var rows = [["NAME", "PUBLIC KEY", "ADDRESSES", "ENDPOINT", "LATEST HANDSHAKE", "TRANSFER"]]
        func row(name: String, key: String, addresses: String) -> [String] {
            guard let peer = live[key] else { return [name, key, addresses, "-", "-", "-"] }
            let latest = peer.latest == 0 ? "never" : StatusFormatter.ago(.seconds(now - peer.latest)) + " ago"
            let transfer = "\(StatusFormatter.bytes(peer.received)) in, \(StatusFormatter.bytes(peer.sent)) out"
            return [name, key, addresses, peer.endpoint, latest, transfer]
        }
        var listed: Set<String> = []
        for peer in config.peers {
            let key = KeyEncoding.encode(peer.publicKey)
            listed.insert(key)
            rows.append(row(name: peer.name ?? "-", key: key, addresses: peer.allowedIPs.map(\.description).joined(separator: ",")))
        }
        for key in order where !listed.contains(key) {
            rows.append(row(name: "(not in the file)", key: key, addresses: live[key]!.allowed))
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { cells in
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 2)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}
