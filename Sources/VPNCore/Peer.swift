// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// One peer's protocol state inside a ``Tunnel``: its sessions, handshake in flight, timers,
/// endpoint, staged packets and counters.
///
/// Not thread-safe; owned by one data-plane thread.
final class Peer {
    let number: UInt32
    let configuration: PeerConfiguration
    var handshakeInfo: PeerHandshakeInfo
    var slots = KeypairSlots()
    var timers: PeerTimers
    var endpoint: Endpoint?
    /// Packets waiting for a session, in arrival order.
    let staged: FrameQueue
    /// The initiation we sent and wait an answer for.
    var pendingInitiation: PendingInitiation?
    /// Grows with every initiation asked for and every give-up: an initiation computed for an
    /// older ticket is stale and thrown away.
    var initiationTicket: UInt64 = 0
    /// Cookie and mac1 memory for our initiations (mac2).
    var cookieJar: CookieJar

    var receivedBytes: UInt64 = 0
    var receivedPackets: UInt64 = 0
    var sentBytes: UInt64 = 0
    var sentPackets: UInt64 = 0
    var latestHandshake: Instant?
    var drops: [UInt64]
    /// True after a handshake gave up, until the next one succeeds (so the log says it once).
    var reportedGiveUp = false

    init(number: UInt32, configuration: PeerConfiguration, timers: TimerSettings, stagingSlots: Int, slotSize: Int) {
        self.number = number
        self.configuration = configuration
        handshakeInfo = PeerHandshakeInfo(publicKey: configuration.publicKey, presharedKey: configuration.presharedKey)
        self.timers = PeerTimers(settings: timers, persistentKeepalive: configuration.persistentKeepalive)
        endpoint = configuration.endpoint ?? configuration.rememberedEndpoint
        cookieJar = CookieJar(peerPublicKey: configuration.publicKey)
        staged = FrameQueue(capacity: stagingSlots, slotSize: slotSize, headroom: TransportData.tcpHeadroom)
        drops = [UInt64](repeating: 0, count: DropReason.allCases.count)
    }

    @inline(__always)
    func count(_ reason: DropReason) { drops[Int(reason.rawValue)] &+= 1 }
}

@available(*, unavailable)
extension Peer: Sendable {}
