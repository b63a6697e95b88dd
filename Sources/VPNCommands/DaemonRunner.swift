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
        return serve(signals: signals, logger: logger, readyWaitsForHandshake: options.role == .client) {
            try start(options, logger: logger)
        }
    }

    /// Starts a daemon with `start`, then waits for a signal (or for the daemon to fail) and stops
    /// it; returns the exit status. `ready` is called once the daemon runs (vpnd-wg tells its
    /// caller).
    /// With `readyWaitsForHandshake` (a client), systemd's READY=1 waits for the first session,
    /// at most ``clientReadyWait``: after that it is sent anyway, with a STATUS that says so, so an
    /// unreachable server delays the units ordered after vpnd but never fails the boot.
    static func serve(
        signals: ProcessSignals, logger: Logger, readyWaitsForHandshake: Bool = false, ready: () -> Void = {},
        failed: (String) -> Void = { _ in }, _ start: () throws -> RunningDaemon
    ) -> Int32 {
        // Connected before anything else (and before a privilege drop).
        let notifier = SystemdNotifier()
        let running: RunningDaemon
        do {
            running = try start()
        } catch let error as StartupError {
            logger.error("\(error.description)")
            failed(error.description)
            return 1
        } catch {
            logger.error("\(error)")
            failed("\(error)")
            return 1
        }
        if running.failed {
            running.stop()
            return 1
        }
        ready()
        // systemd (Type=notify): ready once the interface, its routes and sockets are up (a
        // client: and its first session, or clientReadyWait without one).
        var received = ProcessSignals.Signal.terminate
        var waitingForSession = readyWaitsForHandshake && notifier != nil
        let readyDeadline = SystemdNotifier.monotonicMicroseconds + UInt64(clientReadyWait.components.seconds) * 1_000_000
        if !waitingForSession { notifier?.send("READY=1\nSTATUS=\(running.statusLine())\nMAINPID=\(Posix.processID)") }
        var sinceWatchdog = Duration.zero

        // Wait for a signal; meanwhile, once a second, remember where the peers are.
        var ticks = 0
        while true {
            var signal: ProcessSignals.Signal?
            let polling = waitingForSession
            if waitingForSession {
                // Polled every 100 ms until the first session or the deadline; signals still count.
                let hasSession = freshSnapshot(running.control, withinMilliseconds: 100)?.peers.contains(where: \.hasSession) ?? false
                if hasSession || SystemdNotifier.monotonicMicroseconds >= readyDeadline {
                    let status = hasSession ? running.statusLine()
                        : "\(running.statusLine()); no handshake with the server after \(clientReadyWait.components.seconds) s, still trying"
                    notifier?.send("READY=1\nSTATUS=\(status)\nMAINPID=\(Posix.processID)")
                    waitingForSession = false
                }
                Posix.sleep(milliseconds: 100)
                signal = signals.wait(seconds: 0)
            } else {
                signal = signals.wait(seconds: 1)
            }
            if let signal, signal != .wake {
                if signal == .hangup, let reloader = running.reloader {
                    notifier?.send("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds)")
                    let (applied, message) = reloader.reload(trigger: "SIGHUP")
                    notifier?.send("READY=1\nSTATUS=\(applied ? "reloaded" : "reload refused"): \(message.prefix(200)); \(running.statusLine())")
                    continue
                }
                received = signal
                break
            }
            if polling { continue }  // the once-a-second work below waits for the ready state
            if let endpoints = running.control.takeChangedEndpoints() { running.memory.save(endpoints) }
            // The watchdog ping proves the data-plane loop runs: it must answer a snapshot.
            if let notifier, let interval = notifier.watchdogInterval {
                sinceWatchdog += .seconds(1)
                if sinceWatchdog * 2 >= interval || interval <= .seconds(2) {
                    if freshSnapshot(running.control, withinMilliseconds: 500) != nil {
                        notifier.send("WATCHDOG=1\nSTATUS=\(running.statusLine())")
                    }
                    sinceWatchdog = .zero
                }
            }
            ticks += 1
            if ticks % Int(HostNameRefresher.interval.components.seconds) == 0 {
                running.hostNames.refresh(control: running.control, logger: logger)
            }
        }
        if running.interfaceGone {
            logger.info("interface \(running.interfaceName) was deleted; shutting down")
        } else {
            logger.info("received \(received.name), shutting down")
        }
        notifier?.send("STOPPING=1")
        running.stop()
        logger.info("stopped; interface \(running.interfaceName) removed")
        return running.failed ? 1 : 0
    }

    /// How long a client's READY=1 waits for its first session (three handshake attempts).
    static let clientReadyWait: Duration = .seconds(15)

    /// Everything up to a running data plane; throws before touching any interface on a config error.
    static func start(_ options: DaemonOptions, logger: Logger) throws -> RunningDaemon {
        let config = try loadConfig(options)
        // An unknown user stops start-up here, before any interface exists.
        let account = try PrivilegeSetup.account(named: options.user ?? config.interface.user)
        try ConfigFileSecrecy.check(config, path: options.configPath)
        try HostSetup.checkHooksAndDNS(config, account: account)
        let memory = EndpointMemory(directory: options.runDirectory, interfaceName: config.interface.name)
        let loaded = memory.load()
        if let warning = loaded.warning { logger.warning("\(warning)") }
        let remembered = loaded.endpoints
        let (privateKey, resolvedPeers) = try resolve(config, options: options, account: account)
        let peers = resolvedPeers.map { peer in
            var peer = peer
            if peer.endpoint == nil { peer.rememberedEndpoint = remembered[peer.publicKey] }
            return peer
        }
        let mode: HandshakeIdentity.Mode = config.interface.mode == .tap ? .tap : .tun
        var timers = TimerSettings.wireGuard
        if let rekey = Posix.environment("VPND_TEST_REKEY_AFTER_SECONDS"), let seconds = Int(rekey) {
            // Test hook only: shortens every WireGuard timer in proportion (documented in docs/config.md).
            timers = .shortened(rekeyAfterTime: .seconds(seconds))
            logger.warning("test timers in use: rekey after \(seconds) s (VPND_TEST_REKEY_AFTER_SECONDS)")
        }
        // Path MTU discovery is for UDP: a TCP stream carries messages of any size.
        let discovery = config.interface.pathMTUDiscovery && config.interface.transport.carriesUDP
        var tunnelConfiguration = TunnelConfiguration(
            mode: mode, privateKey: privateKey, mtu: config.interface.mtu, peers: peers, timers: timers,
            pathMTUDiscovery: discovery, mssClamp: config.interface.mssClamp)
        if config.interface.cipher != .chaCha20Poly1305 {
            guard config.interface.cipher.isAvailable else {
                throw StartupError(
                    "\(config.fileName): Cipher = \(config.interface.cipher.rawValue) needs a CPU with AES and carry-less multiply instructions (AES-NI and PCLMULQDQ), which this one lacks; set Cipher = chacha20poly1305 (the default) on both ends")
            }
            tunnelConfiguration.cipher = config.interface.cipher
        }
        if config.interface.transport == .auto {
            // A server answers over either carrier; a client chooses for the server it dials.
            tunnelConfiguration.carriers = options.role == .client ? .agile : .both
            // The client's TCP side dials one server: the first peer with an Endpoint.
            let dialled = peers.filter { $0.endpoint != nil }
            tunnelConfiguration.carrierPeer = dialled.first?.publicKey
            if options.role == .client && dialled.count > 1 {
                logger.warning(
                    "Transport = auto: only the first [Peer] with an Endpoint (\(KeyEncoding.encode(dialled[0].publicKey))) moves to TCP when UDP is blocked; the other \(dialled.count - 1) stay on UDP")
            }
        }
        if config.interface.transport.carriesTCP && options.role == .client && !peers.contains(where: { $0.endpoint != nil }) {
            throw StartupError("\(config.fileName): vpnd --client needs a [Peer] with an Endpoint")
        }
        var plan = LaunchPlan(
            name: config.interface.name, tunnel: tunnelConfiguration, transport: config.interface.transport,
            role: options.role, listenPort: config.interface.listenPort ?? 0, addresses: config.interface.addresses,
            routes: mode == .tun ? config.peers.flatMap(\.allowedIPs) : [], bridge: config.interface.bridge,
            setUpInterface: true, offloads: options.offloads, runDirectory: options.runDirectory, account: account,
            keepNetAdmin: config.interface.keepNetAdmin, metricsListen: config.interface.metricsListen,
            peerNames: PeerNames.of(config.peers),
            configPath: Posix.containingDirectory(of: options.configPath) + "/"
                + (options.configPath.split(separator: "/").last.map(String.init) ?? options.configPath),
            host: config.interface.host)
        plan.packetThreads = config.interface.threads ?? PacketThreads.automatic(cpus: Posix.usableCPUCount())
        var hostNames = HostNameRefresher(peers: config.peers.compactMap { peer in
            if case .hostName = peer.endpoint { return (peer.publicKey, peer.endpoint!) }
            return nil
        })
        if config.interface.host.killSwitch != .off { hostNames.killSwitchEndpoints = Set(peers.compactMap(\.endpoint)) }
        let running = try launch(plan, memory: memory, hostNames: hostNames, logger: logger)
        running.reloader = Reloader(
            options: options, account: account, loaded: Reloader.Loaded(config: config, privateKey: privateKey, peers: resolvedPeers),
            changer: running.changer, control: running.control, names: running.peerNames, logger: logger)
        return running
    }

    /// The keys and peers of `config` as the core takes them: key files read, host names resolved
    /// (with `User =`, by a child that has already dropped privileges).
    static func resolve(
        _ config: Config, options: DaemonOptions, account: UserAccount?
    ) throws -> (privateKey: SecretKey, peers: [PeerConfiguration]) {
        let baseDirectory = Posix.containingDirectory(of: options.configPath)
        let privateKey = try resolveKey(config.interface.privateKey, base: baseDirectory, secret: .privateKey)
        var psks: [SecretKey?] = []
        for peer in config.peers {
            psks.append(try peer.presharedKey.map { try resolveKey($0, base: baseDirectory, secret: .presharedKey) })
        }
        let endpoints = try EndpointResolver.resolveAll(config.peers.map(\.endpoint), as: account)
        var peers: [PeerConfiguration] = []
        for (i, peer) in config.peers.enumerated() {
            peers.append(
                PeerConfiguration(
                    publicKey: peer.publicKey, presharedKey: psks[i], allowedIPs: peer.allowedIPs, endpoint: endpoints[i],
                    persistentKeepalive: .seconds(Int(peer.persistentKeepalive ?? 0))))
        }
        return (privateKey, peers)
    }

    /// The doorbells and pollers of `count − 1` crypto workers and the data-plane thread's wait
    /// for them; nil for one packet thread.
    static func packetThreadParts(
        _ count: Int
    ) throws(IOError) -> (workers: [(doorbell: any Wakeup, poller: any Poller)], finished: (wakeup: any Wakeup, poller: any Poller))? {
        guard count > 1 else { return nil }
        var workers: [(doorbell: any Wakeup, poller: any Poller)] = []
        for _ in 1..<count { workers.append((doorbell: try EventFDWakeup(), poller: try EpollPoller(capacity: 4))) }
        return (workers, (wakeup: try EventFDWakeup(), poller: try EpollPoller(capacity: 4)))
    }

    /// Builds the sockets, the interface, the daemon and its control sockets from `plan`, and drops
    /// privileges: everything after the configuration is read.
    static func launch(
        _ plan: LaunchPlan, memory: EndpointMemory, hostNames: HostNameRefresher, logger: Logger
    ) throws -> RunningDaemon {
        var plan = plan
        // Table, FwMark and the full tunnel: decided (and a crashed run's rules removed) first.
        plan.routing = try HostRouting.prepare(for: plan, logger: logger)
        let tunnelConfiguration = plan.tunnel
        let mode = tunnelConfiguration.mode
        let peers = tunnelConfiguration.peers
        let mtu = tunnelConfiguration.mtu
        // Sockets first (a port in use must stop us before the interface exists).
        let transport: any Transport
        var udpOffloads: String?
        let bindEndpoint = Endpoint(addressBytes: [UInt8](repeating: 0, count: 16), port: plan.listenPort)
        let maxMessage = TransportData.messageSize(forPacketLength: mtu + 14, mtu: mtu + 14)
        switch plan.transport {
        case .udp:
            let socket = try UDPSocket(
                bindingTo: bindEndpoint, offloads: plan.offloads, pathMTUDiscovery: tunnelConfiguration.pathMTUDiscovery)
            if plan.routing.socketMark != 0 { try socket.setFirewallMark(plan.routing.socketMark) }
            transport = UDPTransport(socket: socket, maxDatagram: maxMessage)
            udpOffloads = socket.offloadSummary
        case .tcp:
            if plan.role == .server {
                let listener = try TCPListener(bindingTo: bindEndpoint, firewallMark: plan.routing.socketMark)
                transport = TCPServerTransport(listener: listener, maxFrame: maxMessage, logger: logger)
            } else {
                let target = peers.first(where: { $0.endpoint != nil })!.endpoint!
                transport = TCPClientTransport(
                    dialer: TCPDialer(firewallMark: plan.routing.socketMark), remote: target, maxFrame: maxMessage, logger: logger)
            }
        case .auto:
            let socket = try UDPSocket(
                bindingTo: bindEndpoint, offloads: plan.offloads, pathMTUDiscovery: tunnelConfiguration.pathMTUDiscovery)
            if plan.routing.socketMark != 0 { try socket.setFirewallMark(plan.routing.socketMark) }
            let udp = UDPTransport(socket: socket, maxDatagram: maxMessage)
            udpOffloads = socket.offloadSummary
            if plan.role == .server {
                // TCP on the port UDP got (the same one when ListenPort is given).
                var tcpBind = bindEndpoint
                tcpBind.port = socket.localEndpoint.port
                let listener = try TCPListener(bindingTo: tcpBind, firewallMark: plan.routing.socketMark)
                transport = DualTransport(
                    udp: udp, server: TCPServerTransport(listener: listener, maxFrame: maxMessage, logger: logger))
            } else {
                let target = peers.first(where: { $0.endpoint != nil })!.endpoint!
                transport = DualTransport(
                    udp: udp,
                    client: TCPClientTransport(
                        dialer: TCPDialer(firewallMark: plan.routing.socketMark), remote: target, maxFrame: maxMessage,
                        logger: logger))
            }
        }
        // The metrics endpoint too (MetricsListen): before the interface, and before a privilege drop.
        let metricsServer = try plan.metricsListen.map { try MetricsHTTP.listen(on: $0) }

        // The interface.
        if plan.setUpInterface { try HostSetup.runPreUp(plan.host, interface: plan.name, logger: logger) }
        // Super-packets (TSO/USO in, coalesced TCP out), tun and tap alike (tap: Ethernet frames).
        let device = try TunDevice(
            name: plan.name, mode: mode == .tap ? .tap : .tun, offloads: plan.offloads.tunOffloads)
        let netlink = try Netlink()
        let hostChanges = HostChanges(logger: logger)
        if plan.setUpInterface {
            do {
                try InterfaceSetup.configure(
                    device: device, netlink: netlink, mtu: mtu, addresses: plan.addresses, routes: plan.routes,
                    bridge: plan.bridge, placement: plan.routing.placement)
                try hostChanges.apply(HostSetup.steps(for: plan.host, interface: device.name, plan: plan, logger: logger))
            } catch {
                try? netlink.deleteLink(device.name)
                hostChanges.interfaceRemoved()
                throw error
            }
        } else {
            do { try netlink.setMTU(mtu, on: device.name) } catch {
                try? netlink.deleteLink(device.name)
                throw error
            }
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
            endpointsChanged: { ProcessSignals.send(.wake) }, packetThreads: try packetThreadParts(plan.packetThreads)))
        daemon.dataPlane.startsWithFirewallMark(plan.routing.socketMark)
        if plan.transport == .udp {
            let offloads = plan.offloads
            let discovery = tunnelConfiguration.pathMTUDiscovery
            daemon.dataPlane.rebind = { (port) throws(IOError) in
                try UDPSocket(
                    bindingTo: Endpoint(addressBytes: [UInt8](repeating: 0, count: 16), port: port), offloads: offloads,
                    pathMTUDiscovery: discovery)
            }
        }
        let tunnel = daemon.tunnel
        let control = daemon.control

        let publicKey = tunnelConfiguration.hasPrivateKey ? KeyEncoding.encode(tunnel.identity.publicKey) : "(none yet)"
        let portText = transport.localPort.map { "port \($0)" } ?? "to \(peers.first?.endpoint.map { "\($0)" } ?? "?")"
        logger.info(
            "interface \(device.name) up: mode \(mode == .tap ? "tap" : "tun"), transport \(plan.transport.rawValue) \(portText), MTU \(mtu), public key \(publicKey)"
        )
        var offloadText = device.activeOffloads.isEmpty ? "tun offloads: none" : device.offloadSummary
        if let udpOffloads { offloadText += "; " + udpOffloads }
        logger.info("\(offloadText)")
        if plan.packetThreads > 1 || tunnelConfiguration.cipher != .chaCha20Poly1305 {
            logger.info("\(plan.packetThreads) packet thread\(plan.packetThreads == 1 ? "" : "s"), cipher \(tunnelConfiguration.cipher.rawValue)")
        }
        for (i, peer) in peers.enumerated() {
            let allowed = peer.allowedIPs.map(\.description).joined(separator: ", ")
            logger.info(
                "peer \(i + 1): \(KeyEncoding.encode(peer.publicKey)) endpoint \(peer.endpoint.map { "\($0)" } ?? peer.rememberedEndpoint.map { "\($0) (remembered)" } ?? "(waits for the peer)") allowed IPs \(allowed.isEmpty ? "(none)" : allowed)"
            )
        }

        let info = DaemonInfo(
            interfaceName: device.name, listenPort: transport.localPort,
            mode: mode == .tap ? "tap" : "tun", transport: plan.transport.rawValue,
            cipher: tunnelConfiguration.cipher.rawValue, threads: plan.packetThreads, configPath: plan.configPath)
        let controlSocket: ControlSocket
        do {
            controlSocket = try ControlSocket(
                directory: plan.runDirectory, interfaceName: device.name, info: info, control: control, logger: logger,
                names: PeerNames(plan.peerNames), metricsServer: metricsServer)
        } catch {
            hostChanges.undoAll()
            try? netlink.deleteLink(device.name)
            hostChanges.interfaceRemoved()
            throw error
        }
        // WireGuard's configuration socket, for wg and wg-quick (made as root, like the others).
        // vpnd-wg is nothing without it; a vpnd daemon goes on without it.
        let changer = ConfigurationChanger(
            interface: ConfigurationChanger.Interface(
                name: device.name, managesRoutes: mode == .tun && plan.setUpInterface, addresses: plan.addresses,
                placement: plan.routing.placement, fixedMark: plan.routing.fullTunnel?.table,
                killSwitchEndpoints: plan.host.killSwitch == .off ? nil : Set(plan.tunnel.peers.compactMap(\.endpoint))),
            control: control, routes: RouteTable(netlink: try Netlink()), logger: logger)
        let uapi = UAPIService.open(
            interface: UAPIService.Interface(name: device.name), control: control, changer: changer, logger: logger,
            required: !plan.setUpInterface)
        if uapi == nil && !plan.setUpInterface {
            controlSocket.discard()
            hostChanges.undoAll()
            try? netlink.deleteLink(device.name)
            hostChanges.interfaceRemoved()
            throw StartupError(
                "\(UAPIService.directory)/\(device.name).sock is served by another process: interface \(device.name) is in use; pick another name")
        }
        // Everything privileged is done (tun, netlink, bind, run directory); no thread reads the
        // network yet. After this the daemon cannot delete its interface through netlink: the
        // kernel removes it (and its addresses and routes) when the tun descriptor closes at exit.
        if let account = plan.account {
            do {
                try PrivilegeSetup.drop(
                    to: account, runDirectory: plan.runDirectory, keepNetAdmin: plan.keepNetAdmin, logger: logger)
            } catch {
                controlSocket.discard()
                uapi?.discard()
                hostChanges.undoAll()
                try? netlink.deleteLink(device.name)
                hostChanges.interfaceRemoved()
                throw error
            }
        }
        let running = RunningDaemon(
            daemon: daemon, controlSocket: controlSocket, uapi: uapi, changer: changer, device: device, netlink: netlink,
            memory: memory, hostNames: hostNames, logger: logger)
        running.unprivileged = plan.account != nil
        running.hostChanges = hostChanges
        return running
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
    let changer: ConfigurationChanger
    /// Re-reads the config file (`vpnd --server/--client`; nil for vpnd-wg, which has none).
    var reloader: Reloader? {
        didSet { controlSocket.reloader = reloader }
    }
    /// The peers' names that show and metrics print (the Reloader replaces them).
    var peerNames: PeerNames { controlSocket.names }
    private let device: TunDevice
    private let netlink: Netlink
    private let logger: Logger
    private(set) var failed = false
    /// Privileges were dropped: netlink can no longer delete the interface; closing the tun does.
    var unprivileged = false
    /// The host set-up around the interface (HostSetup), undone on stop.
    var hostChanges: HostChanges?
    var interfaceName: String { device.name }

    /// One line for systemd's STATUS=: the peers and how many have a session.
    func statusLine() -> String {
        guard let status = freshSnapshot(control, withinMilliseconds: 200) ?? control.latestSnapshot else {
            return "\(device.name) up"
        }
        let sessions = status.peers.filter(\.hasSession).count
        return "\(device.name) up, \(status.peers.count) peer(s), \(sessions) with a session"
    }
    /// The interface no longer exists (`ip link del`, `wg-quick down`): the daemon stopped because of it.
    var interfaceGone: Bool {
        if case .failure(let error) = Result(catching: { () throws(IOError) in try netlink.link(device.name) }) {
            return error.errno == 19  // ENODEV
        }
        return false
    }

    init(daemon: Daemon, controlSocket: ControlSocket, uapi: UAPIService?, changer: ConfigurationChanger, device: TunDevice,
         netlink: Netlink, memory: EndpointMemory, hostNames: HostNameRefresher, logger: Logger) {
        self.daemon = daemon
        self.uapi = uapi
        self.changer = changer
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
        hostChanges?.undoAll()
        if unprivileged {
            // (PostDown, the one step run after the interface is gone, is refused with User.)
            logger.debug("\(device.name) goes away when vpnd exits and its tun descriptor closes (privileges were dropped)")
            return
        }
        do { try netlink.deleteLink(device.name) } catch {
            // A tun device vanishes when its fd closes anyway; only log if it is still there.
            logger.debug("removing \(device.name): \(error)")
        }
        hostChanges?.interfaceRemoved()
    }
}

/// What to launch, whichever front end read it: `vpnd --server/--client` from a config file,
/// vpnd-wg from its command line (an empty interface that `wg` configures).
struct LaunchPlan {
    var name: String
    var tunnel: TunnelConfiguration
    var transport: Config.Transport
    var role: Config.Role
    var listenPort: UInt16
    var addresses: [IPPrefix]
    /// AllowedIPs that get kernel routes (tun).
    var routes: [IPPrefix]
    var bridge: String?
    /// vpnd sets up addresses, routes and the link itself; false for vpnd-wg, where wg-quick
    /// (or the user) does, as with wireguard-go.
    var setUpInterface: Bool
    var offloads: LinuxOffloadOptions
    var runDirectory: String
    var account: UserAccount?
    /// With `account`: keep CAP_NET_ADMIN (`KeepNetAdmin`).
    var keepNetAdmin = true
    /// `MetricsListen`: where to serve the metrics over HTTP (nil: nowhere).
    var metricsListen: Endpoint? = nil
    /// The peers' names (`# alice`), for show and metrics.
    var peerNames: [Bytes32: String] = [:]
    /// The config file, as an absolute path (the control socket's `config` answer); nil for vpnd-wg.
    var configPath: String? = nil
    /// The host around the interface (wg-quick's DNS, Table, hooks; the kill switch, forwarding).
    var host = Config.HostSettings()
    /// Packet threads: the data-plane thread and `packetThreads − 1` crypto workers.
    var packetThreads = 1
    /// Table, FwMark and the full tunnel, as `launch` decides them from `host` and `routes`.
    var routing = HostRouting()
}
