// SPDX-License-Identifier: MIT
import ArgumentParser
import Logging
import VPNCore
import VPNLinux

/// `vpnd`: run a tunnel end (`--server` or `--client`), or inspect one (`vpnd show`).
public struct VPNDCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpnd",
        abstract: "An encrypted point-to-point VPN: tun or tap over UDP or TCP, WireGuard-compatible in tun/UDP mode.",
        discussion: """
            Start the listening end with `vpnd --server --config server.conf` and the connecting end \
            with `vpnd --client --config client.conf`. The config file uses WireGuard's INI format \
            (docs/config.md lists every key); command-line flags override it. vpnd needs root or \
            CAP_NET_ADMIN to create its interface. Stop it with Ctrl-C or SIGTERM: the interface and \
            its routes are removed.

            Generate keys with vpnd-keygen (`vpnd-keygen generate server`). Inspect a running tunnel \
            with `vpnd show`; `vpnd doctor` explains why one is not up. The control socket lives in /run/vpnd (or $VPND_RUN_DIR).
            """,
        subcommands: [ShowCommand.self, ReloadCommand.self, MetricsCommand.self, DoctorCommand.self])

    @Flag(name: .long, help: "Listen for clients on ListenPort.")
    var server = false

    @Flag(name: .long, help: "Connect to the peer's Endpoint.")
    var client = false

    @Option(name: [.short, .long], help: ArgumentHelp("The config file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Override ListenPort.", valueName: "port"))
    var listenPort: String?

    @Option(name: .long, help: ArgumentHelp("Override the peer's Endpoint (host:port, [v6]:port).", valueName: "endpoint"))
    var endpoint: String?

    @Option(name: .long, help: ArgumentHelp("Override Mode: tun or tap.", valueName: "mode"))
    var mode: String?

    @Option(name: .long, help: ArgumentHelp("Override Transport: udp or tcp.", valueName: "transport"))
    var transport: String?

    @Option(name: .long, help: ArgumentHelp("Override MTU.", valueName: "bytes"))
    var mtu: String?

    @Option(name: .long, help: ArgumentHelp("Override the interface Name.", valueName: "name"))
    var name: String?

    @Flag(name: .long, help: "Use no kernel offload (for comparison or a kernel that misbehaves).")
    var noOffload = false

    @Flag(name: .long, help: "Read and write plain packets on the tun (no TSO/USO super-packets, no coalescing).")
    var noTunOffload = false

    @Flag(name: .long, help: "Send one UDP datagram per packet (no UDP GSO).")
    var noGso = false

    @Flag(name: .long, help: "Receive one UDP datagram per packet (no UDP GRO).")
    var noGro = false

    @Option(name: .long, help: ArgumentHelp("Switch to this user (name or id) after set-up; overrides User.", valueName: "name"))
    var user: String?

    @Flag(name: [.short, .long], help: "Log debug details (handshakes, drops).")
    var verbose = false

    @Flag(name: [.short, .long], help: "Log only warnings and errors.")
    var quiet = false

    public init() {}

    func validateRole() throws {
        if server == client {
            throw ValidationError("say which end this is: --server or --client")
        }
        if config == nil { throw ValidationError("--config FILE is required (see docs/config.md)") }
        if verbose && quiet { throw ValidationError("--verbose and --quiet exclude each other") }
    }

    public func run() throws {
        try validateRole()
        let overrides = ConfigOverrides(
            listenPort: listenPort, endpoint: endpoint, mode: mode, transport: transport, mtu: mtu, name: name)
        let options = DaemonOptions(
            role: server ? .server : .client, configPath: config!, overrides: overrides,
            logLevel: verbose ? .debug : (quiet ? .warning : .info), runDirectory: ControlSocket.directory,
            offloads: LinuxOffloadOptions(
                tunVnetHeader: !(noOffload || noTunOffload), udpGSO: !(noOffload || noGso),
                udpGRO: !(noOffload || noGro)),
            user: user)
        let status = DaemonRunner.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
