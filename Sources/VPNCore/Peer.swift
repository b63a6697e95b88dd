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
    var drops = DropCounters()
    /// True after a handshake gave up, until the next one succeeds (so the log says it once).
    var reportedGiveUp = false
    /// The path-MTU search towards this peer; `prober.mtu` bounds what is sent to it.
    var prober: PathMTUProber
    /// Whether the search ran once (it starts with the first session that can send).
    var proberStarted = false
    /// A packet larger than ``PathMTUProber/conservativeMTU`` went out since the peer was last
    /// heard from (for the black-hole fallback with peers that do not echo probes).
    var largeSentUnanswered = false
    /// Data went unanswered after large packets: if the next handshake still completes, small
    /// packets get through and large ones do not.
    var blackHoleSuspected = false
    /// When the last ICMP "too big" went back into the device for this peer (rate limit).
    var lastTooBigAt: Instant?

    init(
        number: UInt32, configuration: PeerConfiguration, timers: TimerSettings, stagingSlots: Int, slotSize: Int,
        mtu: Int
    ) {
        self.number = number
        prober = PathMTUProber(maximum: mtu)
        self.configuration = configuration
        handshakeInfo = PeerHandshakeInfo(publicKey: configuration.publicKey, presharedKey: configuration.presharedKey)
        self.timers = PeerTimers(settings: timers, persistentKeepalive: configuration.persistentKeepalive)
        endpoint = configuration.endpoint ?? configuration.rememberedEndpoint
        cookieJar = CookieJar(peerPublicKey: configuration.publicKey)
        staged = FrameQueue(capacity: stagingSlots, slotSize: slotSize, headroom: TransportData.tcpHeadroom)
    }

    @inline(__always)
    func count(_ reason: DropReason) { drops.count(reason) }
}

@available(*, unavailable)
extension Peer: Sendable {}
