// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// What ``Tunnel/apply(_:now:)`` changed, for the daemon (kernel routes, the log, the answer).
public struct TunnelReconfiguration: Sendable, Equatable {
    /// Peers created, removed, and changed (a key, endpoint, keepalive or AllowedIPs differs), in
    /// request order.
    public var added: [Bytes32] = []
    public var removed: [Bytes32] = []
    public var changed: [Bytes32] = []
    /// Our private key is a new one, or was cleared: every session was dropped.
    public var privateKeyChanged = false
    /// The tunnel MTU now, when the request changed it.
    public var mtu: Int?
    /// The AllowedIPs of every peer before and after, each prefix once (for the routes the
    /// daemon owns).
    public var allowedIPsBefore: [IPPrefix] = []
    public var allowedIPsAfter: [IPPrefix] = []

    public init() {}

    /// Nothing changed (a `wg setconf` of the running configuration).
    public var isEmpty: Bool { added.isEmpty && removed.isEmpty && changed.isEmpty && !privateKeyChanged && mtu == nil }
}

extension Tunnel {
    /// The most peers one interface may have (wireguard-go's limit).
    public static let maximumPeers = 1 << 16

    /// Applies a `set=1` request (wireguard.com/xplatform) at once: the whole request, or, when
    /// it is refused, nothing. A peer the request leaves as it was keeps its sessions, timers and
    /// counters; a changed private key drops every session (the peers' sessions were made with
    /// the old one) and removes a peer whose public key is now ours, as WireGuard does.
    /// `listen_port` and `fwmark` are the daemon's (sockets); the core ignores them.
    public func apply(_ request: UAPISetRequest, now: Instant) throws(UAPIError) -> TunnelReconfiguration {
        var plan = try ReconfigurationPlan(tunnel: self, request: request)
        return commit(&plan, now: now)
    }

    /// Checks `request` as ``apply(_:now:)`` would, changing nothing, and previews its AllowedIPs
    /// (``TunnelReconfiguration/allowedIPsBefore`` and `After`; the peer lists stay empty), so
    /// the daemon can add the kernel routes first.
    @discardableResult
    public func check(_ request: UAPISetRequest) throws(UAPIError) -> TunnelReconfiguration {
        let plan = try ReconfigurationPlan(tunnel: self, request: request)
        var preview = TunnelReconfiguration()
        preview.allowedIPsBefore = Self.allPrefixes(configuration.peers)
        preview.allowedIPsAfter = Self.allPrefixes(plan.peers)
        return preview
    }

    private func commit(_ plan: inout ReconfigurationPlan, now: Instant) -> TunnelReconfiguration {
        var result = TunnelReconfiguration()
        result.allowedIPsBefore = Self.allPrefixes(configuration.peers)
        var change = HandshakeDirectoryChange()
        if plan.clearsPrivateKey {
            configuration.hasPrivateKey = false
            identityGeneration &+= 1
            for case let peer? in peers { forgetSessions(peer) }
            result.privateKeyChanged = true
        }
        if let mtu = plan.mtu {
            // Lowered at once; a raise is searched for again (path probes) before it is used.
            configuration.mtu = mtu
            for case let peer? in peers {
                peer.prober.setMaximum(mtu, probing: configuration.pathMTUDiscovery && peer.proberStarted)
                if configuration.pathMTUDiscovery && peer.proberStarted {
                    peer.prober.begin(now: now)
                    serviceProber(peer, now: now)
                }
            }
            result.mtu = mtu
        }
        if let newIdentity = plan.newIdentity {
            identity = newIdentity
            configuration.privateKey = newIdentity.privateKey
            configuration.hasPrivateKey = true
            identityGeneration &+= 1
            admission = HandshakeGate(identity: newIdentity)
            for case let peer? in peers { forgetSessions(peer) }
            change.identity = newIdentity
            result.privateKeyChanged = true
        }
        // Removals first, so an added peer may take a freed number.
        let keep = Set(plan.peers.map(\.publicKey))
        for case let peer? in peers where !keep.contains(peer.configuration.publicKey) {
            removePeer(peer)
            change.removed.append(peer.configuration.publicKey)
            result.removed.append(peer.configuration.publicKey)
        }
        for wanted in plan.peers {
            if let number = peersByKey[wanted.publicKey], let peer = peers[number] {
                let moved = plan.endpoints[wanted.publicKey].map { $0 != peer.endpoint } ?? false
                guard moved || !Self.same(peer.configuration, wanted) else { continue }
                if !Self.same(peer.configuration.presharedKey, wanted.presharedKey) {
                    peer.handshakeInfo.presharedKey = wanted.presharedKey
                    change.updated.append(PeerHandshakeInfo(publicKey: wanted.publicKey, presharedKey: wanted.presharedKey))
                }
                update(peer, to: wanted, endpoint: moved ? plan.endpoints[wanted.publicKey] : nil, now: now)
                result.changed.append(wanted.publicKey)
            } else {
                let peer = addPeer(wanted)
                change.updated.append(PeerHandshakeInfo(publicKey: wanted.publicKey, presharedKey: wanted.presharedKey))
                result.added.append(wanted.publicKey)
                if wanted.persistentKeepalive > .zero { peer.timers.setPersistentKeepalive(wanted.persistentKeepalive, now: now) }
            }
        }
        configuration.peers = peers.compactMap { $0?.configuration }
        // The routing table afresh (removed prefixes leave no nodes behind).
        routes = AllowedIPs()
        for case let peer? in peers {
            for prefix in peer.configuration.allowedIPs { routes.insert(prefix, peer: peer.number) }
        }
        if configuration.mode == .tap { tapPeer = peers.lazy.compactMap { $0 }.first }
        submitReconfiguration(change, now: now)
        // New peers with an endpoint, and every peer after a key change, handshake at once (as at
        // start-up) so the first packet does not wait.
        for key in result.added + (result.privateKeyChanged ? plan.peers.map(\.publicKey) : []) {
            if let number = peersByKey[key], let peer = peers[number], peer.endpoint != nil, peer.slots.current == nil {
                startHandshake(peer, now: now)
            }
        }
        result.allowedIPsAfter = Self.allPrefixes(configuration.peers)
        return result
    }

    private func addPeer(_ configuration: PeerConfiguration) -> Peer {
        let number = freePeerNumbers.popLast() ?? UInt32(peers.count)
        let peer = Peer(
            number: number, configuration: configuration, timers: self.configuration.peerTimers, mtu: self.configuration.mtu,
            carrierSettings: self.configuration.carrierSettings(for: configuration), book: deadlineBook)
        peer.createdAfterTicket = lastTicket
        if Int(number) == peers.count { peers.append(peer) } else { peers[Int(number)] = peer }
        peersByKey[configuration.publicKey] = Int(number)
        return peer
    }

    private func removePeer(_ peer: Peer) {
        forgetSessions(peer)
        peer.timers.stop()
        releaseStaging(peer)
        peersByKey[peer.configuration.publicKey] = nil
        peers[Int(peer.number)] = nil
        deadlineBook.remove(peer.number)
        freePeerNumbers.append(peer.number)
    }

    /// Drops the peer's sessions and the initiation it waits for (their indexes go too).
    func forgetSessions(_ peer: Peer) {
        indexTable.remove(peer.slots.clear())
        if let pending = peer.pendingInitiation { indexTable.remove(pending.localIndex) }
        peer.initiation = .idle
    }

    private func update(_ peer: Peer, to wanted: PeerConfiguration, endpoint: Endpoint?, now: Instant) {
        let old = peer.configuration
        peer.configuration = wanted
        if let endpoint {
            updateEndpoint(peer, endpoint, now: now)
            if peer.slots.current == nil { startHandshake(peer, now: now) }
        }
        if old.persistentKeepalive != wanted.persistentKeepalive {
            peer.timers.setPersistentKeepalive(wanted.persistentKeepalive, now: now)
        }
    }

    /// Whether two peer configurations say the same (keys compared by value).
    public static func same(_ a: PeerConfiguration, _ b: PeerConfiguration) -> Bool {
        a.publicKey == b.publicKey && same(a.presharedKey, b.presharedKey) && a.allowedIPs == b.allowedIPs
            && a.endpoint == b.endpoint && a.persistentKeepalive == b.persistentKeepalive
    }

    /// Whether two optional keys are the same key.
    public static func same(_ a: SecretKey?, _ b: SecretKey?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a?, let b?): return a.withUnsafeBytes { x in b.withUnsafeBytes { y in Array(x) == Array(y) } }
        default: return false
        }
    }

    static func allPrefixes(_ peers: [PeerConfiguration]) -> [IPPrefix] {
        var seen = Set<IPPrefix>()
        var out: [IPPrefix] = []
        for peer in peers {
            for prefix in peer.allowedIPs where seen.insert(prefix).inserted { out.append(prefix) }
        }
        return out
    }
}

/// The configuration a request asks for, worked out completely (and checked) before anything in
/// the tunnel changes.
private struct ReconfigurationPlan {
    /// Every peer afterwards, in order: the survivors first, then the new ones.
    var peers: [PeerConfiguration]
    /// Set when the private key changes.
    var newIdentity: HandshakeIdentity?
    /// The request clears the private key (64 zero digits): no handshakes until a new one.
    var clearsPrivateKey = false
    /// The new tunnel MTU, when it differs.
    var mtu: Int?
    /// The endpoints the request sets, by peer: the peer is sent there from now on (a roamed peer
    /// too, as in WireGuard).
    var endpoints: [Bytes32: Endpoint] = [:]

    init(tunnel: Tunnel, request: UAPISetRequest) throws(UAPIError) {
        if let wanted = request.mtu, wanted != tunnel.configuration.mtu {
            guard wanted >= Config.minimumMTU else {
                throw UAPIError(errno: UAPIError.invalid, "MTU \(wanted) is below \(Config.minimumMTU), the least vpnd uses")
            }
            guard wanted <= tunnel.bufferMTU else {
                throw UAPIError(
                    errno: UAPIError.invalid,
                    "MTU \(wanted) is above \(tunnel.bufferMTU), the MTU vpnd started with (its buffers have that size); restart vpnd to raise it")
            }
            mtu = wanted
        }
        switch request.privateKey {
        case .clear?:
            clearsPrivateKey = tunnel.configuration.hasPrivateKey
        case .set(let key)?:
            let candidate = HandshakeIdentity(privateKey: key, mode: tunnel.configuration.mode, cipher: tunnel.configuration.cipher)
            if !tunnel.configuration.hasPrivateKey || candidate.publicKey != tunnel.identity.publicKey {
                newIdentity = candidate
            }
        case nil:
            break
        }
        let ourKey = newIdentity?.publicKey ?? tunnel.identity.publicKey
        var order: [Bytes32] = []
        var ordered = Set<Bytes32>()
        var byKey: [Bytes32: PeerConfiguration] = [:]
        let existing = Set(tunnel.configuration.peers.map(\.publicKey))
        if !request.replacePeers {
            for peer in tunnel.configuration.peers {
                order.append(peer.publicKey)
                ordered.insert(peer.publicKey)
                byKey[peer.publicKey] = peer
            }
        }
        for section in request.peers {
            let key = section.publicKey
            if key == ourKey { continue }  // as wireguard-go: a peer with our own key is ignored
            if section.remove {
                byKey[key] = nil
                continue
            }
            if byKey[key] == nil {
                if section.updateOnly { continue }
                // A peer named again after replace_peers starts over from its defaults, as a new
                // wireguard-go peer would, but keeps its sessions and counters in the tunnel.
                byKey[key] = PeerConfiguration(publicKey: key)
                if ordered.insert(key).inserted { order.append(key) }
            }
            var peer = byKey[key]!
            switch section.presharedKey {
            case .set(let psk)?: peer.presharedKey = psk
            case .clear?: peer.presharedKey = nil
            case nil: break
            }
            if let endpoint = section.endpoint {
                peer.endpoint = endpoint
                endpoints[key] = endpoint
            }
            if let seconds = section.persistentKeepalive { peer.persistentKeepalive = .seconds(Int64(seconds)) }
            if section.replaceAllowedIPs { peer.allowedIPs = [] }
            for allowed in section.allowedIPs {
                switch allowed {
                case .add(let prefix):
                    if !peer.allowedIPs.contains(prefix) { peer.allowedIPs.append(prefix) }
                case .remove(let prefix):
                    peer.allowedIPs.removeAll { $0 == prefix }
                }
            }
            byKey[key] = peer
        }
        // An AllowedIPs prefix belongs to one peer: the one that named it last takes it, as in
        // WireGuard's table.
        var owner: [IPPrefix: Bytes32] = [:]
        for section in request.peers where !section.remove && byKey[section.publicKey] != nil {
            for case .add(let prefix) in section.allowedIPs { owner[prefix] = section.publicKey }
        }
        peers = order.compactMap { byKey[$0] }.map { peer in
            var peer = peer
            peer.allowedIPs.removeAll { prefix in owner[prefix].map { $0 != peer.publicKey } ?? false }
            return peer
        }
        if newIdentity != nil { peers.removeAll { $0.publicKey == ourKey } }
        if tunnel.configuration.mode == .tap && peers.count > 1 {
            let added = peers.filter { !existing.contains($0.publicKey) }.count
            throw UAPIError(
                errno: UAPIError.invalid,
                "a tap interface has exactly one peer, and this request leaves \(peers.count) (\(added) new); remove the old one in the same request")
        }
        guard peers.count <= Tunnel.maximumPeers else {
            throw UAPIError(errno: UAPIError.invalid, "\(peers.count) peers exceed the limit of \(Tunnel.maximumPeers)")
        }
    }
}
