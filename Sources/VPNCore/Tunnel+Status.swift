// SPDX-License-Identifier: MIT
import VPNBasics

extension Tunnel {
    // MARK: - Status

    /// A snapshot for `vpnd show`.
    public func status(now: Instant) -> TunnelStatus {
        return TunnelStatus(
            publicKey: identity.publicKey, now: now, mode: configuration.mode, drops: unattributedDrops.table,
            peers: peers.compactMap { $0 }.map { peer in
                let usable = peer.canSend(now: now)
                return PeerStatus(
                    publicKey: peer.configuration.publicKey, endpoint: peer.endpoint,
                    allowedIPs: peer.configuration.allowedIPs, latestHandshake: peer.latestHandshake,
                    receivedBytes: peer.receivedBytes, receivedPackets: peer.receivedPackets, sentBytes: peer.sentBytes,
                    sentPackets: peer.sentPackets, persistentKeepalive: peer.configuration.persistentKeepalive,
                    drops: peer.drops.table, hasSession: usable, pathMTU: peer.prober.mtu,
                    echoesProbes: configuration.pathMTUDiscovery ? peer.prober.peerEchoes : nil,
                    handshakes: peer.handshakes, cookieRepliesReceived: peer.cookieRepliesReceived,
                    endpointConfigured: peer.configuration.endpoint != nil, initiationsSent: peer.initiationsSent,
                    responsesReceived: peer.responsesReceived, initiationsUnanswered: peer.initiationsUnanswered,
                    initiationsUnansweredInARow: peer.initiationsUnansweredInARow,
                    initiationsAnswered: peer.initiationsAnswered, presharedKey: peer.configuration.presharedKey,
                    carrier: configuration.carriers == .one ? nil : peer.endpoint?.carrier,
                    carrierSwitches: peer.selector?.switches)
            }, privateKey: configuration.hasPrivateKey ? configuration.privateKey : nil, mtu: configuration.mtu,
            // A key added as a peer since is no stranger any more.
            unknownInitiators: unknownInitiators.entries.filter { peersByKey[$0.publicKey] == nil }
                .sorted { $0.lastSeen > $1.lastSeen })
    }
}
