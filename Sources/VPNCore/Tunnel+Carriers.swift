// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Transport agility (docs/protocol.md, "Transport agility"): a `Transport = auto` client moves
/// a session between UDP and TCP without a handshake, and a TCP reconnect keeps the session.
/// Safe because every message is authenticated and replay-protected whatever carries it: the
/// keys and indexes do not depend on the carrier.
extension Tunnel {
    /// Carries out what the peer's ``CarrierSelector`` asks for now.
    func serviceCarrier(_ peer: Peer, now: Instant) {
        guard var selector = peer.selector, let endpoint = peer.endpoint else { return }
        let handshakePending: Bool
        switch peer.initiation {
        case .computing, .awaitingResponse: handshakePending = true
        case .idle, .gaveUp: handshakePending = false
        }
        let hasSession = peer.canSend(now: now)
        let action = selector.tick(now: now, hasSession: hasSession, handshakePending: handshakePending)
        peer.selector = selector
        switch action {
        case .none:
            return
        case .probe(let id):
            sendLivenessProbe(peer, id: id, to: endpoint.over(.udp), now: now)
        case .switchTo(let carrier):
            peer.endpoint = endpoint.over(carrier)
            let reason = selector.lastMoveReason ?? .handshakeUnanswered(selector.settings.handshakeWait)
            emit(.carrierChanged(peer: peer.configuration.publicKey, carrier: carrier, endpoint: peer.endpoint!, reason: reason))
            if carrier == .udp, configuration.pathMTUDiscovery, peer.proberStarted, hasSession {
                peer.prober.begin(now: now)  // what TCP carried says nothing of the UDP path
                serviceProber(peer, now: now)
            }
            // Over TCP the first message waits for the connection (``transportConnected``); over
            // UDP it goes now: a keepalive moves the peer's end to this address, an initiation
            // tries the handshake there.
            guard carrier == .udp else { return }
            if hasSession {
                sendKeepalive(peer, now: now)
            } else {
                sendInitiation(peer, now: now, isRetry: false)
            }
        }
    }

    /// A TCP connection to `remote` was made (the first one, or again after a break). A peer at
    /// that address keeps its session: a keepalive goes out at once over the new connection
    /// (the server learns the connection from it) with a liveness probe, and if nothing
    /// authenticated (the probe's echo, or anything else) comes back within
    /// ``reconnectCheck``, the peer lost its keys (it restarted) and a handshake follows. A peer
    /// with no session gets its initiation now, not at the next retry.
    public func transportConnected(_ remote: Endpoint, now: Instant) {
        for case let peer? in peers {
            guard let endpoint = peer.endpoint, endpoint.sameAddress(as: remote) else { continue }
            if peer.canSend(now: now) {
                peer.reconnectedAt = now
                peer.reconnectCheckAt = now + Self.reconnectCheck
                // The keepalive tells the peer the new connection; the probe's echo proves the
                // peer still holds the keys (a keepalive gets no answer). Over TCP the peer is
                // vpnd, which echoes.
                sendKeepalive(peer, now: now)
                sendLivenessProbe(peer, id: 0, to: endpoint, now: now)
            } else if configuration.hasPrivateKey {
                sendInitiation(peer, now: now, isRetry: false)
            }
        }
    }

    /// An authenticated TCP connection closed. A peer whose endpoint it was goes back to its
    /// latest UDP address (a `Transport = auto` server: the client moved back to UDP, and data it
    /// had sent over TCP earlier arrived after its first UDP message), so what we send it is not
    /// dropped for want of a connection until it sends again.
    public func connectionClosed(_ remote: Endpoint, now: Instant) {
        guard configuration.carriers == .both else { return }
        for case let peer? in peers where peer.endpoint == remote {
            guard let udp = peer.lastUDPEndpoint else { continue }
            peer.endpoint = udp
            emit(.endpointChanged(peer: peer.configuration.publicKey, previous: remote, endpoint: udp))
        }
    }

    /// How long after a reconnect something authenticated must come back before the session is
    /// taken as lost: about a round trip and the peer's processing, with room to spare.
    public static let reconnectCheck: Duration = .seconds(1)

    /// The reconnect check is due: the session goes on if the peer answered since, else a new
    /// handshake starts (its old keys are useless to it).
    func checkReconnect(_ peer: Peer, now: Instant) {
        peer.reconnectCheckAt = nil
        if let heard = peer.lastAuthenticatedAt, heard >= peer.reconnectedAt {
            emit(.reconnected(peer: peer.configuration.publicKey, kept: true))
            return
        }
        // A new handshake; the current keys stay until it completes (a slow path, not a lost
        // session, would otherwise cost the packets in between).
        emit(.reconnected(peer: peer.configuration.publicKey, kept: false))
        sendInitiation(peer, now: now, isRetry: false)
    }

    /// Seals a liveness probe (a path probe of size 0, which the peer echoes) on the current key.
    func sendLivenessProbe(_ peer: Peer, id: UInt32, to destination: Endpoint, now: Instant) {
        sendSmallProbe(.probe, id: id, size: 0, to: destination, for: peer, now: now)
    }
}
