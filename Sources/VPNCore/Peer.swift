// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// One peer's protocol state inside a ``Tunnel``: its sessions, handshake in flight, timers,
/// endpoint, staged packets and counters.
///
/// Not thread-safe; owned by one data-plane thread.
final class Peer {
    let number: UInt32
    /// As configured, with the changes applied since.
    var configuration: PeerConfiguration
    var handshakeInfo: PeerHandshakeInfo
    var slots = KeypairSlots()
    var timers: PeerTimers { didSet { deadlineChanged() } }
    var endpoint: Endpoint?
    /// Packets waiting for a session, in arrival order; a queue from the tunnel's pool while
    /// something waits, nil otherwise (an idle peer holds no packet slots).
    var staged: FrameQueue?
    /// Where our own initiation stands.
    var initiation: InitiationState = .idle
    /// The tunnel's latest ticket when this peer was made: a job with this ticket or an older one
    /// was made for an earlier peer with the same number.
    var createdAfterTicket: UInt64 = 0
    /// The ticket of the latest initiation asked for (unique in the tunnel).
    var lastTicket: UInt64 = 0
    /// Cookie and mac1 memory for our initiations (mac2).
    var cookieJar: CookieJar

    var receivedBytes: UInt64 = 0
    var receivedPackets: UInt64 = 0
    var sentBytes: UInt64 = 0
    var sentPackets: UInt64 = 0
    var latestHandshake: Instant?
    /// Sessions established since start.
    var handshakes: UInt64 = 0
    /// Cookie replies taken from the peer.
    var cookieRepliesReceived: UInt64 = 0
    /// Our initiations put in the outbox for the peer (retries included).
    var initiationsSent: UInt64 = 0
    /// Responses from the peer that authenticated and completed one of our initiations: the
    /// sessions established as initiator.
    var responsesReceived: UInt64 = 0
    /// Our initiations that went unanswered: the retry timer fired, or the round was given up,
    /// while the initiation still waited for its response.
    var initiationsUnanswered: UInt64 = 0
    /// Of those, the ones since the latest response (``responsesReceived``).
    var initiationsUnansweredInARow: UInt64 = 0
    /// Initiations from the peer that authenticated and that we answered with a response.
    var initiationsAnswered: UInt64 = 0
    var drops = DropCounters()
    /// The path-MTU search towards this peer; `prober.mtu` bounds what is sent to it.
    var prober: PathMTUProber { didSet { deadlineChanged() } }
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
    /// When something authenticated last came from the peer (data, keepalive, probe, response).
    var lastAuthenticatedAt: Instant?
    /// The UDP-or-TCP choice, for a peer this end dials with `Transport = auto`; nil otherwise.
    var selector: CarrierSelector? { didSet { deadlineChanged() } }
    /// After a TCP reconnect with a session kept: when to check that the peer answered, and the
    /// instant it must have answered after (else its keys are gone: a new handshake).
    var reconnectCheckAt: Instant? { didSet { deadlineChanged() } }
    var reconnectedAt: Instant = .zero
    /// The peer's latest UDP address (a `Transport = auto` server falls back to it when the TCP
    /// connection that was the peer's endpoint closes).
    var lastUDPEndpoint: Endpoint?

    /// The tunnel's record of every peer's next deadline (``DeadlineBook``), and whether this
    /// peer is marked dirty in it.
    let book: DeadlineBook
    var inDirtyList = false

    /// Marks the peer's deadline for recomputation (each of the four `didSet`s above).
    @inline(__always)
    func deadlineChanged() {
        guard !inDirtyList else { return }
        inDirtyList = true
        book.markDirty(number)
    }

    /// The earliest instant at which any of the peer's timers has work.
    var nextDeadline: Instant? {
        var earliest = timers.nextDeadline
        func lower(_ candidate: Instant?) {
            if let candidate, earliest.map({ candidate < $0 }) ?? true { earliest = candidate }
        }
        lower(prober.deadline)
        if selector != nil { lower(selector!.deadline) }
        lower(reconnectCheckAt)
        return earliest
    }

    init(
        number: UInt32, configuration: PeerConfiguration, timers: TimerSettings, mtu: Int,
        carrierSettings: CarrierSelector.Settings? = nil, book: DeadlineBook = DeadlineBook()
    ) {
        self.number = number
        self.book = book
        book.add(number)
        if let carrierSettings, configuration.endpoint != nil { selector = CarrierSelector(settings: carrierSettings) }
        prober = PathMTUProber(maximum: mtu)
        self.configuration = configuration
        handshakeInfo = PeerHandshakeInfo(publicKey: configuration.publicKey, presharedKey: configuration.presharedKey)
        self.timers = PeerTimers(settings: timers, persistentKeepalive: configuration.persistentKeepalive)
        endpoint = configuration.endpoint ?? configuration.rememberedEndpoint
        lastUDPEndpoint = endpoint
        cookieJar = CookieJar(peerPublicKey: configuration.publicKey)
        inDirtyList = true
        book.markDirty(number)
    }

    @inline(__always)
    func count(_ reason: DropReason) { drops.count(reason) }

    /// Counts our waiting initiation as unanswered (the retry timer fired, or the round gave up).
    func noteInitiationUnanswered() {
        initiationsUnanswered &+= 1
        initiationsUnansweredInARow &+= 1
    }

    /// The initiation we sent and wait the response to.
    var pendingInitiation: PendingInitiation? {
        if case .awaitingResponse(let pending) = initiation { return pending }
        return nil
    }
}

/// Where our own initiation to a peer stands: one value per state, so that no outcome applies
/// in the wrong one.
enum InitiationState {
    /// None under way.
    case idle
    /// Asked for under `ticket`, being computed: an outcome for another ticket is stale (a newer
    /// initiation, a give-up or zeroed keys came since) and thrown away.
    case computing(ticket: UInt64)
    /// Sent; waiting for the response to this one.
    case awaitingResponse(PendingInitiation)
    /// The last round went unanswered for REKEY_ATTEMPT_TIME and was reported (once); new data
    /// or a session leaves this state.
    case gaveUp
}

@available(*, unavailable)
extension Peer: Sendable {}
