// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux

/// What `vpnd --server/--client` was asked to do.
struct DaemonOptions {
    var role: Config.Role
    var configPath: String
    var overrides: ConfigOverrides
    var logLevel: Logger.Level
    var runDirectory: String
    /// Kernel offloads to try (each falls back by itself when the kernel refuses it).
    var offloads: LinuxOffloadOptions = .enabled
    /// `--user`: overrides the config's `User`.
    var user: String? = nil
}

/// A start-up failure: one line for the user, exit status 1.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The composition root: reads the config, builds the Linux backends, hands them to the daemon,
/// runs until a signal, and tears everything down.
enum DaemonRunner {
    /// Runs the daemon; returns the process exit status.
    static func run(_ options: DaemonOptions) -> Int32 {
        // Signals are taken synchronously by the main thread (sigwait); block them everywhere
        // before any thread starts so no other thread receives them.
        // SIGUSR1 is internal: a peer endpoint changed, remember it now.
        let signals = ProcessSignals()

        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = options.logLevel
            return handler
        }
        let logger = Logger(label: "vpnd")

        let running: RunningDaemon
        do {
            running = try start(options, logger: logger)
        } catch let error as StartupError {
            logger.error("\(error.description)")
            return 1
        } catch {
            logger.error("\(error)")
            return 1
        }

        // Wait for a signal; meanwhile, once a second, remember where the peers are.
        var received = ProcessSignals.Signal.terminate
        var ticks = 0
        while true {
            if let signal = signals.wait(seconds: 1), signal != .wake {
                received = signal
                break
            }
            if let endpoints = running.control.takeChangedEndpoints() { running.memory.save(endpoints) }
            ticks += 1
            if ticks % Int(HostNameRefresher.interval.components.seconds) == 0 {
                running.hostNames.refresh(control: running.control, logger: logger)
            }
        }
        logger.info("received \(received.name), shutting down")
        running.stop()
        logger.info("stopped; interface \(running.interfaceName) removed")
        return running.failed ? 1 : 0
    }

    /// Everything up to a running data plane; throws before touching any interface on a config error.
    static func start(_ options: DaemonOptions, logger: Logger) throws -> RunningDaemon {
        let config = try loadConfig(options)
        // An unknown user stops start-up here, before any interface exists.
        let account = try PrivilegeSetup.account(named: options.user ?? config.interface.user)
        try ConfigFileSecrecy.check(config, path: options.configPath)
        let memory = EndpointMemory(directory: options.runDirectory, interfaceName: config.interface.name)
        let loaded = memory.load()
        if let warning = loaded.warning { logger.warning("\(warning)") }
        let remembered = loaded.endpoints
        let baseDirectory = Posix.containingDirectory(of: options.configPath)
        let privateKey = try resolveKey(config.interface.privateKey, base: baseDirectory, secret: .privateKey)
        var psks: [SecretKey?] = []
        for peer in config.peers {
            psks.append(try peer.presharedKey.map { try resolveKey($0, base: baseDirectory, secret: .presharedKey) })
        }
        // Host names: with `User =`, resolved by a child that has already dropped privileges.
        let endpoints = try EndpointResolver.resolveAll(config.peers.map(\.endpoint), as: account)
        var peers: [PeerConfiguration] = []
        for (i, peer) in config.peers.enumerated() {
            let psk = psks[i]
            let endpoint = endpoints[i]
            peers.append(
                PeerConfiguration(
                    publicKey: peer.publicKey, presharedKey: psk, allowedIPs: peer.allowedIPs, endpoint: endpoint,
                    persistentKeepalive: .seconds(Int(peer.persistentKeepalive ?? 0)),
                    rememberedEndpoint: endpoint == nil ? remembered[peer.publicKey] : nil))
        }
        let mode: HandshakeIdentity.Mode = config.interface.mode == .tap ? .tap : .tun
        var timers = TimerSettings.wireGuard
        if let rekey = Posix.environment("VPND_TEST_REKEY_AFTER_SECONDS"), let seconds = Int(rekey) {
            // Test hook only: shortens every WireGuard timer in proportion (documented in docs/config.md).
            timers = .shortened(rekeyAfterTime: .seconds(seconds))
            logger.warning("test timers in use: rekey after \(seconds) s (VPND_TEST_REKEY_AFTER_SECONDS)")
        }
        // Path MTU discovery is for UDP: a TCP stream carries messages of any size.
        let discovery = config.interface.pathMTUDiscovery && config.interface.transport == .udp
        let tunnelConfiguration = TunnelConfiguration(
            mode: mode, privateKey: privateKey, mtu: config.interface.mtu, peers: peers, timers: timers,
            pathMTUDiscovery: discovery, mssClamp: config.interface.mssClamp)

        // Sockets first (a port in use must stop us before the interface exists).
        let transport: any Transport
        var udpOffloads: String?
        let listenPort = config.interface.listenPort ?? 0
        let bindEndpoint = Endpoint(addressBytes: [UInt8](repeating: 0, count: 16), port: listenPort)
        let maxMessage = TransportData.messageSize(forPacketLength: config.interface.mtu + 14, mtu: config.interface.mtu + 14)
        switch config.interface.transport {
        case .udp:
            let socket = try UDPSocket(bindingTo: bindEndpoint, offloads: options.offloads, pathMTUDiscovery: discovery)
            transport = UDPTransport(socket: socket, maxDatagram: maxMessage)
            udpOffloads = socket.offloadSummary
        case .tcp:
            if options.role == .server {
                let listener = try TCPListener(bindingTo: bindEndpoint)
                transport = TCPServerTransport(listener: listener, maxFrame: maxMessage, logger: logger)
            } else {
                guard let target = peers.first(where: { $0.endpoint != nil })?.endpoint else {
                    throw StartupError("\(config.fileName): vpnd --client needs a [Peer] with an Endpoint")
                }
                transport = TCPClientTransport(
                    dialer: TCPDialer(), remote: target, maxFrame: maxMessage, logger: logger)
            }
        }

        // The interface.
        // Super-packets (TSO/USO in, coalesced TCP out), tun and tap alike (tap: Ethernet frames).
        let device = try TunDevice(
            name: config.interface.name, mode: mode == .tap ? .tap : .tun, offloads: options.offloads.tunOffloads)
        let netlink = try Netlink()
        do {
            try InterfaceSetup.configure(
                device: device, netlink: netlink, mtu: config.interface.mtu, addresses: config.interface.addresses,
                routes: mode == .tun ? config.peers.flatMap(\.allowedIPs) : [], bridge: config.interface.bridge)
        } catch {
            try? netlink.deleteLink(device.name)
            throw error
        }

        // The daemon itself, from the Linux backends; handshakes (X25519) run on their own
        // thread, never on the packet thread.
        let daemon = try Daemon(Daemon.Parts(
            configuration: tunnelConfiguration, device: device, transport: transport, poller: try EpollPoller(),
            wakeup: try EventFDWakeup(), clock: BootClock(), entropy: SystemEntropy(), timestamps: SystemTimestamps(),
            logger: logger,
            offloads: DataPlaneOffloads(
                deviceVirtioHeader: device.virtioHeaderLength > 0, linkHeaderLength: mode == .tap ? 14 : 0),
            handshakeThread: (poller: try EpollPoller(), doorbell: try EventFDWakeup()),
            endpointsChanged: { ProcessSignals.send(.wake) }))
        let tunnel = daemon.tunnel
        let control = daemon.control

        let publicKey = KeyEncoding.encode(tunnel.identity.publicKey)
        let portText = transportDescription(config, transport: transport)
        logger.info(
            "interface \(device.name) up: mode \(config.interface.mode.rawValue), transport \(config.interface.transport.rawValue) \(portText), MTU \(config.interface.mtu), public key \(publicKey)"
        )
        var offloadText = device.activeOffloads.isEmpty ? "tun offloads: none" : device.offloadSummary
        if let udpOffloads { offloadText += "; " + udpOffloads }
        logger.info("\(offloadText)")
        for (i, peer) in peers.enumerated() {
            let allowed = peer.allowedIPs.map(\.description).joined(separator: ", ")
            logger.info(
                "peer \(i + 1): \(KeyEncoding.encode(peer.publicKey)) endpoint \(peer.endpoint.map { "\($0)" } ?? peer.rememberedEndpoint.map { "\($0) (remembered)" } ?? "(waits for the peer)") allowed IPs \(allowed.isEmpty ? "(none)" : allowed)"
            )
        }

        let hostNames = HostNameRefresher(peers: config.peers.compactMap { peer in
            if case .hostName = peer.endpoint { return (peer.publicKey, peer.endpoint!) }
            return nil
        })
        let info = DaemonInfo(
            interfaceName: device.name, publicKey: publicKey, listenPort: transport.localPort,
            mode: config.interface.mode.rawValue, transport: config.interface.transport.rawValue)
        let controlSocket = try ControlSocket(
            directory: options.runDirectory, interfaceName: device.name, info: info, control: control, logger: logger)
        // WireGuard's configuration socket, for wg and wg-quick (made as root, like the others).
        let uapi = UAPIService.open(
            interface: UAPIService.Interface(
                name: device.name, listenPort: transport.localPort, managesRoutes: mode == .tun,
                addresses: config.interface.addresses),
            control: control, routes: RouteTable(netlink: try Netlink()), logger: logger)
        // Everything privileged is done (tun, netlink, bind, run directory); no thread reads the
        // network yet. After this the daemon cannot delete its interface through netlink: the
        // kernel removes it (and its addresses and routes) when the tun descriptor closes at exit.
        if let account {
            do { try PrivilegeSetup.drop(to: account, runDirectory: options.runDirectory, logger: logger) } catch {
                controlSocket.discard()
                uapi?.discard()
                try? netlink.deleteLink(device.name)
                throw error
            }
        }
        let running = RunningDaemon(
            daemon: daemon, controlSocket: controlSocket, uapi: uapi, device: device, netlink: netlink, memory: memory,
            hostNames: hostNames, logger: logger)
        running.unprivileged = account != nil
        return running
    }

    static func transportDescription(_ config: Config, transport: any Transport) -> String {
        if let port = transport.localPort { return "port \(port)" }
        return "to \(config.peers.first?.endpoint.map { "\($0)" } ?? "?")"
    }

    static func loadConfig(_ options: DaemonOptions) throws -> Config {
        let path = options.configPath
        guard let text = Posix.readTextFile(path) else {
            let reason = Posix.fileExists(path) ? "cannot be read (check its permissions)" : "does not exist"
            throw StartupError("config file \(path) \(reason)")
        }
        do throws(ConfigError) {
            var config = try Config.parse(text, fileName: path)
            config = try config.applying(options.overrides)
            try config.validate(role: options.role)
            return config
        } catch {
            throw StartupError(error.description)
        }
    }

    enum SecretKind { case privateKey, presharedKey }

    static func resolveKey(_ source: Config.KeySource, base: String, secret: SecretKind) throws -> SecretKey {
        switch source {
        case .key(let key): return key
        case .file(let path):
            let full = path.hasPrefix("/") ? path : (base.isEmpty ? path : base + "/" + path)
            do throws(KeyFileError) {
                switch secret {
                case .privateKey: return try KeyFile.readPrivateKey(path: full)
                case .presharedKey: return try KeyFile.readPresharedKey(path: full)
                }
            } catch {
                throw StartupError(error.description)
            }
        }
    }
}

/// Wall-clock timestamps for handshake initiations (CLOCK_REALTIME).
struct SystemTimestamps: TimestampSource {
    mutating func timestamp() -> TAI64N {
        let now = wallClockNow()
        return TAI64N(unixSeconds: now.seconds, nanoseconds: UInt32(now.nanoseconds))
    }
}

/// A started daemon: its threads, control socket and interface. Used by the main thread only.
final class RunningDaemon {
    let daemon: Daemon
    var control: DataPlaneControl { daemon.control }
    let memory: EndpointMemory
    let hostNames: HostNameRefresher
    private let controlSocket: ControlSocket
    private let uapi: UAPIService?
    private let device: TunDevice
    private let netlink: Netlink
    private let logger: Logger
    private(set) var failed = false
    /// Privileges were dropped: netlink can no longer delete the interface; closing the tun does.
    var unprivileged = false
    var interfaceName: String { device.name }

    init(daemon: Daemon, controlSocket: ControlSocket, uapi: UAPIService?, device: TunDevice, netlink: Netlink,
         memory: EndpointMemory, hostNames: HostNameRefresher, logger: Logger) {
        self.daemon = daemon
        self.uapi = uapi
        self.hostNames = hostNames
        self.memory = memory
        self.controlSocket = controlSocket
        self.device = device
        self.netlink = netlink
        self.logger = logger
        // A thread that stops by itself (or cannot start) makes the main thread's wait return.
        if !daemon.start(threads: PosixThreads(), handshakeEntropy: SystemEntropy(), onFailure: { ProcessSignals.send(.terminate) }) {
            failed = true
            ProcessSignals.send(.terminate)
        }
        controlSocket.start()
        uapi?.start()
    }

    func stop() {
        uapi?.stop()
        daemon.stop()
        if let endpoints = control.takeChangedEndpoints() { memory.save(endpoints) }
        controlSocket.stop()
        if unprivileged {
            logger.debug("\(device.name) goes away when vpnd exits and its tun descriptor closes (privileges were dropped)")
            return
        }
        do { try netlink.deleteLink(device.name) } catch {
            // A tun device vanishes when its fd closes anyway; only log if it is still there.
            logger.debug("removing \(device.name): \(error)")
        }
    }
}
