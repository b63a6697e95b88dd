// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux

/// `SIGHUP` and `vpnd reload`: re-reads the config file and applies the difference from the
/// running configuration live, with `wg syncconf` semantics (peers added by `wg set` and not in
/// the file go): peers added, removed or changed (keys, AllowedIPs and their routes,
/// endpoints, keepalive), the private key, `ListenPort`, `Address` (netlink) and `MTU` (netlink
/// and the data plane; up to the MTU vpnd started with). An unchanged peer keeps its session and
/// counters. A file with any error, or a change of a key that cannot apply live (`Mode`,
/// `Transport`, `Name`, `Bridge`, `User`, `KeepNetAdmin`, `MSSClamp`, `PathMTUDiscovery`,
/// `MetricsListen`), changes nothing and is one line. The peers' names (``PeerNames``) are
/// replaced on every reload that applies.
final class Reloader: Sendable {
    /// What the running daemon was last loaded from.
    struct Loaded: Sendable {
        var config: Config
        var privateKey: SecretKey
        /// As the core takes them (without remembered endpoints).
        var peers: [PeerConfiguration]
    }

    private let options: DaemonOptions
    private let account: UserAccount?
    private let loaded: Mutex<Loaded>
    private let changer: ConfigurationChanger
    private let control: DataPlaneControl
    private let names: PeerNames?
    private let logger: Logger

    init(
        options: DaemonOptions, account: UserAccount?, loaded: Loaded, changer: ConfigurationChanger,
        control: DataPlaneControl, names: PeerNames? = nil, logger: Logger
    ) {
        self.options = options
        self.names = names
        self.control = control
        self.account = account
        self.loaded = Mutex(loaded)
        self.changer = changer
        self.logger = logger
    }

    /// Reloads; returns the one line that says what happened, and whether it applied. `trigger`
    /// names the cause for the log (SIGHUP, `vpnd reload`).
    func reload(trigger: String) -> (applied: Bool, message: String) {
        // One reload at a time (SIGHUP and `vpnd reload` may meet); `loaded` changes only on success.
        let outcome = loaded.withLock { current in
            let result = attempt(from: current)
            if case .success(let (next, _)) = result {
                current = next
                names?.replace(with: next.config.peers)
            }
            return result.map { $0.message }
        }
        switch outcome {
        case .success(let message):
            // The log has one line per change; the caller gets them as one.
            for line in message.split(separator: "; ") { logger.info("reload (\(trigger)): \(line)") }
            return (true, message)
        case .failure(let error):
            logger.warning("reload (\(trigger)) refused, nothing changed: \(error.description)")
            return (false, error.description)
        }
    }

    private func attempt(from old: Loaded) -> Result<(loaded: Loaded, message: String), StartupError> {
        let config: Config
        let privateKey: SecretKey
        let peers: [PeerConfiguration]
        do {
            config = try DaemonRunner.loadConfig(options)
            try ConfigFileSecrecy.check(config, path: options.configPath)
            try Self.checkFixedKeys(old.config, config)
            (privateKey, peers) = try DaemonRunner.resolve(config, options: options, account: account)
        } catch let error as StartupError {
            return .failure(error)
        } catch {
            return .failure(StartupError("\(error)"))
        }
        // The running configuration, as wg set may have changed it since the file was read: the
        // file wins (wg syncconf), except that endpoints are compared with the file read last,
        // so a peer that roamed is not pulled back to the address it was configured with.
        guard let status = freshSnapshot(control, withinMilliseconds: 2000) else {
            return .failure(StartupError("the data plane did not answer within 2 s"))
        }
        let configured = Dictionary(old.peers.map { ($0.publicKey, $0.endpoint) }, uniquingKeysWith: { a, _ in a })
        var running = old
        running.privateKey = status.tunnel.privateKey ?? old.privateKey
        running.peers = status.peers.map { peer in
            PeerConfiguration(
                publicKey: peer.publicKey, presharedKey: peer.presharedKey, allowedIPs: peer.allowedIPs,
                endpoint: configured[peer.publicKey] ?? nil, persistentKeepalive: peer.persistentKeepalive)
        }
        let request = Self.difference(from: running, to: (config, privateKey, peers))
        var lines: [String] = []
        // The interface's MTU by netlink: before the tunnel's when it goes down (so the kernel
        // never hands the tunnel a packet it would refuse), after it when it goes up.
        let device = config.interface.name
        let oldMTU = old.config.interface.mtu
        var mtuSetEarly = false
        if let mtu = request.mtu {
            guard let routes = changer.routes else {
                return .failure(StartupError(
                    "MTU cannot change: vpnd runs without CAP_NET_ADMIN (KeepNetAdmin = no); restart vpnd to apply MTU \(mtu)"))
            }
            if mtu < oldMTU {
                do throws(IOError) {
                    try routes.setMTU(mtu, device: device)
                    mtuSetEarly = true
                } catch {
                    return .failure(StartupError("MTU \(mtu) on \(device): \(error)"))
                }
            }
        }
        if !request.isEmpty {
            switch changer.apply(request) {
            case .failure(let error):
                if mtuSetEarly { try? changer.routes?.setMTU(oldMTU, device: device) }
                return .failure(StartupError(error.message))
            case .success(let change):
                let peersChanged = !(change.added.isEmpty && change.removed.isEmpty && change.changed.isEmpty)
                if peersChanged || change.privateKeyChanged { lines.append(
                    "\(change.added.count) peer(s) added, \(change.removed.count) removed, \(change.changed.count) changed\(change.privateKeyChanged ? ", new private key (sessions dropped)" : "")") }
                lines += change.added.map { "peer \(KeyEncoding.encode($0)) added" }
                lines += change.removed.map { "peer \(KeyEncoding.encode($0)) removed" }
                lines += change.changed.map { "peer \(KeyEncoding.encode($0)) changed" }
            }
        }
        if let mtu = request.mtu {
            if !mtuSetEarly {
                do throws(IOError) {
                    try changer.routes?.setMTU(mtu, device: device)
                } catch {
                    // The tunnel takes the larger MTU already; the kernel keeps sending the old size.
                    lines.append("MTU \(mtu) NOT set on \(device) (\(error)): it stays \(oldMTU) there")
                }
            }
            lines.append("MTU \(oldMTU) -> \(mtu)")
        }
        // The interface's addresses (after the peers, which cannot fail any more).
        let oldAddresses = Set(old.config.interface.addresses), newAddresses = Set(config.interface.addresses)
        for address in config.interface.addresses where !oldAddresses.contains(address) {
            do throws(IOError) {
                try changer.routes?.changeAddress(address, add: true, device: config.interface.name)
                lines.append("address \(address) added")
            } catch {
                lines.append("address \(address) NOT added: \(error)")
            }
        }
        for address in old.config.interface.addresses where !newAddresses.contains(address) {
            do throws(IOError) {
                try changer.routes?.changeAddress(address, add: false, device: config.interface.name)
                lines.append("address \(address) removed")
            } catch {
                lines.append("address \(address) NOT removed: \(error)")
            }
        }
        changer.setAddresses(config.interface.addresses)
        return .success((
            Loaded(config: config, privateKey: privateKey, peers: peers), lines.isEmpty ? "no change" : lines.joined(separator: "; ")
        ))
    }

    /// Refuses a change of a key that only a restart applies, naming it.
    static func checkFixedKeys(_ old: Config, _ new: Config) throws {
        let a = old.interface, b = new.interface
        var changed: [String] = []
        if a.mode != b.mode { changed.append("Mode (\(a.mode.rawValue) -> \(b.mode.rawValue))") }
        if a.threads != b.threads { changed.append("Threads (\(a.threads.map(String.init) ?? "auto") -> \(b.threads.map(String.init) ?? "auto"))") }
        if a.cipher != b.cipher { changed.append("Cipher (\(a.cipher.rawValue) -> \(b.cipher.rawValue))") }
        if a.transport != b.transport { changed.append("Transport (\(a.transport.rawValue) -> \(b.transport.rawValue))") }
        if a.name != b.name { changed.append("Name (\(a.name) -> \(b.name))") }
        if a.bridge != b.bridge { changed.append("Bridge") }
        if a.user != b.user { changed.append("User") }
        if a.keepNetAdmin != b.keepNetAdmin { changed.append("KeepNetAdmin") }
        if a.mssClamp != b.mssClamp { changed.append("MSSClamp") }
        if a.pathMTUDiscovery != b.pathMTUDiscovery { changed.append("PathMTUDiscovery") }
        let h = a.host, k = b.host
        if h.dnsServers != k.dnsServers || h.dnsSearch != k.dnsSearch { changed.append("DNS") }
        if h.table != k.table { changed.append("Table") }
        if h.fwMark != k.fwMark { changed.append("FwMark") }
        if h.table == .auto && k.table == .auto && a.mode == .tun && fullTunnelFamilies(old) != fullTunnelFamilies(new) {
            changed.append("AllowedIPs 0.0.0.0/0 or ::/0 (the full tunnel's policy routing)")
        }
        if h.preUp != k.preUp || h.postUp != k.postUp || h.preDown != k.preDown || h.postDown != k.postDown {
            changed.append("PreUp/PostUp/PreDown/PostDown")
        }
        if h.killSwitch != k.killSwitch || h.allowLAN != k.allowLAN { changed.append("KillSwitch/AllowLAN") }
        if h.forward != k.forward || h.masquerade != k.masquerade { changed.append("Forward/Masquerade") }
        if h.killSwitch != .off {
            // The kill switch lets out the underlay endpoints and the port vpnd started with.
            if a.listenPort != b.listenPort && a.transport.carriesUDP { changed.append("ListenPort (with KillSwitch)") }
            let added = Set(new.peers.compactMap(\.endpoint)).subtracting(old.peers.compactMap(\.endpoint))
            if !added.isEmpty { changed.append("Endpoint \(added.map(\.description).sorted().joined(separator: ", ")) (with KillSwitch)") }
        }
        if a.metricsListen != b.metricsListen {
            changed.append("MetricsListen (\(a.metricsListen.map { "\($0)" } ?? "none") -> \(b.metricsListen.map { "\($0)" } ?? "none"))")
        }
        if a.transport.carriesTCP && a.listenPort != b.listenPort { changed.append("ListenPort (over TCP)") }
        guard changed.isEmpty else {
            throw StartupError(
                "\(new.fileName): \(changed.joined(separator: ", ")) cannot change while vpnd runs; restart vpnd to apply it")
        }
    }

    /// Which families have a default route among the AllowedIPs (in tun mode with Table = auto:
    /// the full tunnel's, set up at start).
    static func fullTunnelFamilies(_ config: Config) -> [Bool] {
        let prefixes = config.peers.flatMap(\.allowedIPs).filter { $0.length == 0 }
        return [true, false].filter { ipv4 in prefixes.contains { $0.address.isIPv4 == ipv4 } }
    }

    /// The `set=1` request that turns the running configuration `old` into `new`: only what
    /// differs (a peer whose lines are the same is not named, so it keeps everything).
    static func difference(
        from old: Loaded, to new: (config: Config, privateKey: SecretKey, peers: [PeerConfiguration])
    ) -> UAPISetRequest {
        var request = UAPISetRequest()
        if !Tunnel.same(old.privateKey, new.privateKey) { request.privateKey = .set(new.privateKey) }
        if old.config.interface.listenPort != new.config.interface.listenPort, let port = new.config.interface.listenPort {
            request.listenPort = port
        }
        if old.config.interface.mtu != new.config.interface.mtu { request.mtu = new.config.interface.mtu }
        let before = Dictionary(old.peers.map { ($0.publicKey, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Set(new.peers.map(\.publicKey))
        for peer in old.peers where !after.contains(peer.publicKey) {
            var change = UAPIPeerChange(publicKey: peer.publicKey)
            change.remove = true
            request.peers.append(change)
        }
        for peer in new.peers {
            let was = before[peer.publicKey]
            if let was, Tunnel.same(was, peer) { continue }
            var change = UAPIPeerChange(publicKey: peer.publicKey)
            if was == nil || !Tunnel.same(was!.presharedKey, peer.presharedKey) {
                change.presharedKey = peer.presharedKey.map { .set($0) } ?? (was == nil ? nil : .clear)
            }
            if let endpoint = peer.endpoint, endpoint != was?.endpoint { change.endpoint = endpoint }
            if was == nil || was!.persistentKeepalive != peer.persistentKeepalive {
                change.persistentKeepalive = UInt16(clamping: peer.persistentKeepalive.components.seconds)
            }
            if was == nil || was!.allowedIPs != peer.allowedIPs {
                change.replaceAllowedIPs = true
                change.allowedIPs = peer.allowedIPs.map { .add($0) }
            }
            request.peers.append(change)
        }
        return request
    }
}

extension UAPISetRequest {
    /// Asks for nothing.
    var isEmpty: Bool { privateKey == nil && listenPort == nil && fwmark == nil && !replacePeers && peers.isEmpty && mtu == nil }
}
