// SPDX-License-Identifier: MIT
import ArgumentParser
import Logging
import VPNBasics
import VPNCore
import VPNCrypto
import VPNLinux

/// `vpnd-wg`: a drop-in for wireguard-go (wireguard.com/xplatform). `vpnd-wg IFNAME` creates an
/// empty tun interface and its configuration socket /var/run/wireguard/IFNAME.sock, returns once
/// both exist and runs on in the background; `wg` and `wg-quick` configure it from there
/// (`WG_QUICK_USERSPACE_IMPLEMENTATION=vpnd-wg`). It stops on SIGTERM or SIGINT, or when the
/// interface is deleted (`ip link del IFNAME`, `wg-quick down`), and removes the socket.
public struct VPNDWireGuardCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpnd-wg",
        abstract: "A drop-in for wireguard-go: an interface that wg and wg-quick configure.",
        discussion: """
            `vpnd-wg IFNAME` creates the tun interface IFNAME (no key, no peer, MTU 1420, link down) and \
            serves WireGuard's configuration protocol on /var/run/wireguard/IFNAME.sock (mode 0600), then \
            returns while it runs on in the background; with -f, or WG_PROCESS_FOREGROUND=1, it stays in \
            the foreground. Configure it with wg (`wg setconf IFNAME FILE`, `wg set ...`) or let wg-quick \
            do all of it: `WG_QUICK_USERSPACE_IMPLEMENTATION=vpnd-wg wg-quick up CONF`. Logs go to \
            standard error; LOG_LEVEL=debug, error or silent changes how much. vpnd show lists it too.
            """)

    @Flag(name: [.customShort("f"), .long], help: "Stay in the foreground.")
    var foreground = false

    @Argument(help: ArgumentHelp("The interface to create (at most 15 characters).", valueName: "interface"))
    var interface: String

    public init() {}

    public func validate() throws {
        guard !interface.isEmpty, interface.utf8.count <= 15, !interface.contains("/"), interface != ".", interface != ".." else {
            throw ValidationError("\(interface) is not a usable interface name (1-15 characters, no /)")
        }
    }

    public func run() throws {
        if !foreground && Posix.environment("WG_PROCESS_FOREGROUND") != "1" {
            // As wireguard-go: start again in the background and return once it is ready.
            // As wireguard-go: the background process keeps stdout and stderr only with LOG_LEVEL set.
            let level = Posix.environment("LOG_LEVEL")
            throw ExitCode(Background.relaunch(
                name: CommandLine.arguments.first ?? "vpnd-wg", arguments: ["--foreground", interface], environment: [:],
                keepOutput: level != nil && level != "silent"))
        }
        let signals = ProcessSignals()
        let level = Self.logLevel(Posix.environment("LOG_LEVEL"))
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vpnd-wg")
        let name = interface
        let status = DaemonRunner.serve(
            signals: signals, logger: logger, ready: { Background.notifyReady() },
            failed: { Background.notifyFailure("vpnd-wg: \($0)") }
        ) {
            try Self.launch(interface: name, logger: logger)
        }
        throw ExitCode(status)
    }

    static func logLevel(_ text: String?) -> Logger.Level {
        switch text {
        case "debug", "verbose": return .debug
        case "error": return .error
        case "silent": return .critical
        default: return .info
        }
    }

    /// An interface with no key and no peer, its UDP socket on a port the kernel picks (wg sets
    /// `listen_port` and the key; wg-quick the addresses, MTU, link state and routes).
    static func launch(interface: String, logger: Logger) throws -> RunningDaemon {
        var entropy = SystemEntropy()
        var tunnel = TunnelConfiguration(
            mode: .tun, privateKey: X25519.generatePrivateKey(using: &entropy), mtu: 1420, peers: [],
            pathMTUDiscovery: true)
        tunnel.hasPrivateKey = false
        let plan = LaunchPlan(
            name: interface, tunnel: tunnel, transport: .udp, role: .server, listenPort: 0, addresses: [], routes: [],
            bridge: nil, setUpInterface: false, offloads: .enabled, runDirectory: ControlSocket.directory, account: nil)
        return try DaemonRunner.launch(
            plan, memory: EndpointMemory(directory: ControlSocket.directory, interfaceName: interface),
            hostNames: HostNameRefresher(peers: []), logger: logger)
    }
}
