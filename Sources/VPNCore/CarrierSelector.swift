// SPDX-License-Identifier: MIT
import VPNBasics

/// Which carrier a `Transport = auto` client uses to reach its server, UDP or TCP, and when to
/// move the session between them (docs/protocol.md, "Transport agility"). Pure: every instant is
/// passed in, and the owner carries out the ``Action`` that ``tick(now:hasSession:handshakePending:)``
/// returns.
///
/// - With no session, each carrier gets ``Settings/handshakeWait`` from the first initiation sent
///   over it; a handshake that is not answered by then moves to the other carrier (UDP first).
/// - On UDP with a session: data or keepalives sent and nothing authenticated received for
///   ``Settings/probeAfter`` sends a liveness probe every ``Settings/probeInterval``; silence for
///   ``Settings/switchAfter`` with at least two probes unanswered moves to TCP.
/// - On TCP with a session: a liveness probe goes over UDP every ``Settings/udpProbeInterval``;
///   once every probe has been answered for ``returnAfter``, the session moves back to UDP. If
///   nothing authenticated comes over TCP within ``Settings/handshakeWait`` of the move (TCP
///   blocked too, or no TCP at the server), the session goes back to UDP at once.
///   Hysteresis: moving to TCP within ``Settings/flapWindow`` of the last return doubles
///   ``returnAfter`` (up to ``Settings/maximumReturnAfter``); a stay on UDP of
///   ``Settings/stableAfter`` resets it.
///
/// Liveness probes are path probes (type 5) of size 0: a vpnd peer echoes them like any probe;
/// a WireGuard peer never sees one, since a client only runs this against `Transport = auto`.
public struct CarrierSelector: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        /// How long a handshake waits on one carrier before trying the other.
        public var handshakeWait: Duration = .seconds(3)
        /// Unanswered sending for this long starts the liveness probes.
        public var probeAfter: Duration = .seconds(1)
        /// Liveness probes over a silent UDP path, this often.
        public var probeInterval: Duration = .milliseconds(500)
        /// Unanswered sending for this long (with two probes unanswered) moves to TCP.
        public var switchAfter: Duration = .seconds(2)
        /// On TCP: UDP probes this often.
        public var udpProbeInterval: Duration = .seconds(1)
        /// On TCP: UDP answering every probe for this long moves back (the first time).
        public var returnAfter: Duration = .seconds(5)
        /// The longest ``returnAfter`` grows to on a flapping network.
        public var maximumReturnAfter: Duration = .seconds(20)
        /// A move to TCP within this long of the last return counts as a flap.
        public var flapWindow: Duration = .seconds(30)
        /// A stay on UDP this long forgets past flaps.
        public var stableAfter: Duration = .seconds(60)

        public init() {}
    }

    /// What the owner must do now.
    public enum Action: Equatable, Sendable {
        case none
        /// Send a liveness probe with this id over UDP, to the peer's address.
        case probe(id: UInt32)
        /// Move the session to this carrier (the owner sends at once over it).
        case switchTo(Carrier)
    }

    public let settings: Settings
    /// The carrier in use.
    public private(set) var carrier: Carrier = .udp
    /// Moves made since start.
    public private(set) var switches: UInt64 = 0
    /// How long UDP must answer before a return, now.
    public private(set) var returnAfter: Duration
    /// When the next ``tick(now:hasSession:handshakePending:)`` has work, or nil.
    public private(set) var deadline: Instant?
    /// Why the latest move was made.
    public private(set) var lastMoveReason: CarrierChange?

    /// No session: when the first initiation over the current carrier went out.
    private var handshakeWaitFrom: Instant?
    /// The first send that nothing authenticated has answered since (nil: all answered).
    private var unansweredFrom: Instant?
    /// Liveness probes sent since the last authenticated receive (UDP), or the one outstanding (TCP).
    private var unansweredProbes = 0
    private var nextProbeID: UInt32 = 1
    /// On TCP: the probe waiting for its echo, and since when UDP has answered every probe.
    private var outstandingProbe: UInt32?
    private var udpAnsweringSince: Instant?
    /// When the session last moved back to UDP.
    private var returnedAt: Instant?
    /// On TCP: when the session moved there, and whether anything authenticated came over TCP since.
    private var movedToTCPAt: Instant?
    private var tcpAnswered = false

    public init(settings: Settings = Settings()) {
        self.settings = settings
        returnAfter = settings.returnAfter
    }

    /// An authenticated data message or keepalive went out (called per packet: cheap).
    @inline(__always)
    public mutating func sent(now: Instant) {
        guard unansweredFrom == nil else { return }
        unansweredFrom = now
        if carrier == .udp { lower(now + settings.probeAfter) }
    }

    /// Something authenticated arrived from the peer over `carrier` (data, a keepalive, a
    /// response, an echo).
    @inline(__always)
    public mutating func received(over carrier: Carrier, now: Instant) {
        guard carrier == self.carrier else { return }
        unansweredFrom = nil
        unansweredProbes = 0
        if carrier == .tcp { tcpAnswered = true }
    }

    /// An initiation went out while there is no session.
    public mutating func initiationSent(now: Instant) {
        guard handshakeWaitFrom == nil else { return }
        handshakeWaitFrom = now
        lower(now + settings.handshakeWait)
    }

    /// A session was established (over the current carrier).
    public mutating func sessionEstablished(now: Instant) {
        handshakeWaitFrom = nil
        unansweredFrom = nil
        unansweredProbes = 0
        if carrier == .tcp { lower(now) }  // start probing UDP
    }

    /// The echo of a liveness probe arrived over `carrier`.
    public mutating func echoReceived(id: UInt32, over carrier: Carrier, now: Instant) {
        received(over: carrier, now: now)
        guard self.carrier == .tcp, carrier == .udp, id == outstandingProbe else { return }
        outstandingProbe = nil
        if udpAnsweringSince == nil { udpAnsweringSince = now }
        if now - udpAnsweringSince! >= returnAfter { lower(now) }
    }

    /// Runs what is due at `now`.
    public mutating func tick(now: Instant, hasSession: Bool, handshakePending: Bool) -> Action {
        guard let due = deadline, due <= now else { return .none }
        deadline = nil
        guard hasSession else {
            // No session: alternate carriers while a handshake is under way.
            guard handshakePending, let from = handshakeWaitFrom else {
                handshakeWaitFrom = nil
                return .none
            }
            if now - from >= settings.handshakeWait {
                move(to: carrier == .udp ? .tcp : .udp, now: now, withSession: false)
                lastMoveReason = .handshakeUnanswered(settings.handshakeWait)
                handshakeWaitFrom = now
                lower(now + settings.handshakeWait)
                return .switchTo(carrier)
            }
            lower(from + settings.handshakeWait)
            return .none
        }
        handshakeWaitFrom = nil
        switch carrier {
        case .udp:
            guard let from = unansweredFrom else { return .none }
            let silent = now - from
            if silent >= settings.switchAfter && unansweredProbes >= 2 {
                move(to: .tcp, now: now, withSession: true)
                lastMoveReason = .udpSilent(settings.switchAfter)
                lower(now)
                return .switchTo(.tcp)
            }
            guard silent >= settings.probeAfter else {
                lower(from + settings.probeAfter)
                return .none
            }
            unansweredProbes += 1
            lower(now + settings.probeInterval)
            return .probe(id: takeProbeID())
        case .tcp:
            if let since = udpAnsweringSince, outstandingProbe == nil, now - since >= returnAfter {
                lastMoveReason = .udpAnswering(returnAfter)
                move(to: .udp, now: now, withSession: true)
                return .switchTo(.udp)
            }
            if !tcpAnswered, let moved = movedToTCPAt, now - moved >= settings.handshakeWait {
                // TCP is no better: back to UDP, where the session at least may still work.
                move(to: .udp, now: now, withSession: true)
                lastMoveReason = .tcpUnanswered(settings.handshakeWait)
                return .switchTo(.udp)
            }
            // The previous probe unanswered by now: UDP is not answering.
            if outstandingProbe != nil { udpAnsweringSince = nil }
            let id = takeProbeID()
            outstandingProbe = id
            lower(now + settings.udpProbeInterval)
            if !tcpAnswered, let moved = movedToTCPAt { lower(moved + settings.handshakeWait) }
            return .probe(id: id)
        }
    }

    /// Moves to `next`. Only moves made with a session count for the hysteresis: alternating
    /// while a handshake finds no answer says nothing about a flapping path.
    private mutating func move(to next: Carrier, now: Instant, withSession: Bool) {
        if withSession, next == .tcp, let returned = returnedAt {
            if now - returned >= settings.stableAfter {
                returnAfter = settings.returnAfter
            } else if now - returned < settings.flapWindow {
                returnAfter = min(returnAfter * 2, settings.maximumReturnAfter)
            }
        }
        if withSession, next == .udp { returnedAt = now }
        movedToTCPAt = next == .tcp ? now : nil
        tcpAnswered = false
        carrier = next
        switches &+= 1
        unansweredFrom = nil
        unansweredProbes = 0
        outstandingProbe = nil
        udpAnsweringSince = nil
    }

    private mutating func takeProbeID() -> UInt32 {
        let id = nextProbeID
        nextProbeID = nextProbeID == UInt32.max ? 1 : nextProbeID + 1
        return id
    }

    private mutating func lower(_ instant: Instant) {
        if let current = deadline, current <= instant { return }
        deadline = instant
    }
}
