// SPDX-License-Identifier: MIT
import ArgumentParser
import Logging
import VPNCore
import VPNLinux

/// `vpnd`: run a tunnel end (`vpnd --server` or `vpnd --client`: the default subcommand), or
/// manage one (`vpnd show`, `reload`, `metrics`, `peer`). The root has no options of its own:
/// ArgumentParser lets a parent's options take their names from every subcommand's arguments,
/// so `vpnd peer add --config` would otherwise never reach the subcommand.
public struct VPNDCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpnd",
        abstract: "An encrypted point-to-point VPN: tun or tap over UDP or TCP, WireGuard-compatible in tun/UDP mode.",
        discussion: """
            Start the listening end with `vpnd --server --config server.conf` and the connecting end \
            with `vpnd --client --config client.conf` (`vpnd run --help` lists their options). The \
            config file uses WireGuard's INI format (docs/config.md lists every key). vpnd needs root \
            or CAP_NET_ADMIN to create its interface. Stop it with Ctrl-C or SIGTERM: the interface \
            and its routes are removed.

            Generate keys with vpnd-keygen (`vpnd-keygen generate server`); add a server's clients \
            with `vpnd peer add`. Inspect a running tunnel with `vpnd show`; `vpnd doctor` explains why \
            one is not up; `vpnd down` removes what a stopped one left (a persistent kill switch). The \
            control socket lives in /run/vpnd (or $VPND_RUN_DIR).
            """,
        subcommands: [RunCommand.self, ShowCommand.self, ReloadCommand.self, MetricsCommand.self, PeerCommand.self, DoctorCommand.self, DownCommand.self],
        defaultSubcommand: RunCommand.self)

    public init() {}
}

/// `vpnd run` (the default: `vpnd --server ...` is `vpnd run --server ...`): one tunnel end.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a tunnel end: --server listens on ListenPort, --client connects to the peer's Endpoint (the default subcommand).",
        discussion: """
            The config file uses WireGuard's INI format (docs/config.md lists every key); the flags \
            below override it. SIGHUP (or `vpnd reload`) re-reads the file and applies the difference \
            live; SIGTERM or Ctrl-C stops vpnd and removes its interface and routes, and the rules of \
            a full tunnel (AllowedIPs = 0.0.0.0/0 or ::/0 with Table = auto: wg-quick's policy \
            routing). A start after a crash removes what a full tunnel left first.
            """)

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

    @Option(name: .long, help: ArgumentHelp("Override Transport: udp, tcp or auto (both: UDP first, TCP when UDP is blocked).", valueName: "transport"))
    var transport: String?

    @Option(name: .long, help: ArgumentHelp("Override MTU.", valueName: "bytes"))
    var mtu: String?

    @Option(name: .long, help: ArgumentHelp("Override the interface Name.", valueName: "name"))
    var name: String?

    @Option(name: .long, help: ArgumentHelp("Override Threads: packet threads, 1-64 or auto.", valueName: "n"))
    var threads: String?

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

    init() {}

    func validateRole() throws {
        if server == client {
            throw ValidationError("say which end this is: --server or --client")
        }
        if config == nil { throw ValidationError("--config FILE is required (see docs/config.md)") }
        if verbose && quiet { throw ValidationError("--verbose and --quiet exclude each other") }
    }

    func run() throws {
        try validateRole()
        let overrides = ConfigOverrides(
            listenPort: listenPort, endpoint: endpoint, mode: mode, transport: transport, mtu: mtu, name: name,
            threads: threads)
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
