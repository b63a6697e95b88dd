// SPDX-License-Identifier: MIT
import VPNBasics

/// What a ``PeerTimers/tick(now:)`` asks its owner to do; several may be due at once.
public struct TimerActions: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Send a handshake initiation (a retry, or a new handshake because the peer went quiet), then
    /// report it with ``PeerTimers/handshakeInitiated(now:entropy:)``.
    public static let sendHandshakeInitiation = TimerActions(rawValue: 1 << 0)
    /// Send a keepalive: a transport message with an empty payload, or, with no usable key, stage
    /// one and start a handshake.
    public static let sendKeepalive = TimerActions(rawValue: 1 << 1)
    /// The handshake round failed: drop the staged packets and report it
    /// (``TunnelEvent/handshakeGaveUp(peer:after:configuredEndpoint:)``). A new round starts when
    /// new data is staged.
    public static let handshakeGaveUp = TimerActions(rawValue: 1 << 2)
    /// No session for REJECT_AFTER_TIME × 3: zero and drop every keypair and any partial handshake,
    /// and drop the staged packets.
    public static let zeroKeys = TimerActions(rawValue: 1 << 3)
    /// The new-handshake timer fired: data went out and nothing authenticated came back for
    /// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT. Reported whether or not an initiation is allowed, so the
    /// owner can look at the path (its MTU may have shrunk).
    public static let dataUnanswered = TimerActions(rawValue: 1 << 4)

    public var description: String {
        var names: [String] = []
        if contains(.sendHandshakeInitiation) { names.append("sendHandshakeInitiation") }
        if contains(.sendKeepalive) { names.append("sendKeepalive") }
        if contains(.handshakeGaveUp) { names.append("handshakeGaveUp") }
        if contains(.zeroKeys) { names.append("zeroKeys") }
        if contains(.dataUnanswered) { names.append("dataUnanswered") }
        return "[" + names.joined(separator: ", ") + "]"
    }
}

/// WireGuard's timers for one peer, kept as instants: events in, ``nextDeadline`` and
/// ``TimerActions`` out (whitepaper §6).
///
/// The owner reports each event as it happens, sleeps until ``nextDeadline``, then calls
/// ``tick(now:)`` and carries out the actions it returns. Nothing here reads a clock or a random
/// source: every instant is passed in, and the handshake jitter comes from the caller's
/// `EntropySource`. No call allocates.
///
/// The events are wireguard-go's `timers*` hooks; the five armed instants are its five timers:
///
/// | timer | armed by | disarmed by | fires |
/// | --- | --- | --- | --- |
/// | retransmit handshake | `handshakeInitiated` | `handshakeCompleted` | a retry, or the give-up |
/// | passive keepalive | `dataReceived` (if idle) | `anyAuthenticatedPacketSent` | a keepalive |
/// | new handshake | `dataSent` (if idle) | `anyAuthenticatedPacketReceived` | an initiation |
/// | zero keys | `sessionDerived`, a give-up | — | zeroing |
/// | persistent keepalive | `anyAuthenticatedPacketTraversal` | — | a keepalive |
///
/// A timer fires at most once per tick, however late the tick comes: a late tick does not replay
/// missed periods.
///
/// Not thread-safe; owned by the data-plane thread that owns the peer.
public struct PeerTimers: Sendable, Equatable {
    /// The limits in force; ``TimerSettings/wireGuard`` outside tests.
    public let settings: TimerSettings
    /// The persistent keepalive interval; zero when off.
    public internal(set) var persistentKeepalive: Duration

    /// When the current handshake initiation is due for a retry (or the round gives up).
    public internal(set) var retransmitHandshakeAt: Instant?
    /// When a passive keepalive is due (data received, nothing sent since).
    public internal(set) var passiveKeepaliveAt: Instant?
    /// When a new handshake is due because data went out and nothing came back.
    public internal(set) var newHandshakeAt: Instant?
    /// When all key material is to be zeroed.
    public internal(set) var zeroKeysAt: Instant?
    /// When the next persistent keepalive is due.
    public internal(set) var persistentKeepaliveAt: Instant?

    /// Initiations sent in the current handshake round; zero when no round is under way.
    public internal(set) var handshakeAttempts: Int
    /// When we last sent a handshake message: an initiation, or a response (wireguard-go's
    /// `lastSentHandshake`). No initiation goes out within REKEY_TIMEOUT of it.
    public internal(set) var lastHandshakeSent: Instant?
    /// When the last handshake completed, for status output.
    public internal(set) var lastHandshakeCompleted: Instant?
    /// Whether the last-minute rekey on receive (§6.2) was already asked for this session.
    var rekeyedOnReceive: Bool

    /// Creates idle timers: nothing armed.
    ///
    /// - Parameters:
    ///   - settings: the limits; ``TimerSettings/wireGuard`` outside tests.
    ///   - persistentKeepalive: the PersistentKeepalive interval, zero (the default) for off.
    public init(settings: TimerSettings = .wireGuard, persistentKeepalive: Duration = .zero) {
        self.settings = settings
        self.persistentKeepalive = max(persistentKeepalive, .zero)
        handshakeAttempts = 0
        rekeyedOnReceive = false
    }

    /// The earliest armed timer, or `nil` when none is armed: the owner sleeps until then.
    ///
    /// Calling ``tick(now:)`` before this instant does nothing.
    public var nextDeadline: Instant? {
        var earliest = retransmitHandshakeAt
        Self.lower(&earliest, to: passiveKeepaliveAt)
        Self.lower(&earliest, to: newHandshakeAt)
        Self.lower(&earliest, to: zeroKeysAt)
        Self.lower(&earliest, to: persistentKeepaliveAt)
        return earliest
    }

    /// Replaces `earliest` with `candidate` when that is armed and earlier.
    private static func lower(_ earliest: inout Instant?, to candidate: Instant?) {
        guard let candidate else { return }
        if let current = earliest, current <= candidate { return }
        earliest = candidate
    }

    /// Fires every timer due at `now`, once, and returns what the owner must do.
    ///
    /// - Retransmit handshake (§6.4): if fewer than ``TimerSettings/maxHandshakeAttempts``
    ///   initiations went out in this round, asks for another; otherwise gives up, cancels the
    ///   passive keepalive and the new-handshake timer, and arms the zero-keys timer if it is not
    ///   armed (wireguard-go does the same, to clear what a partial exchange left).
    /// - New handshake (§6.5): asks for an initiation, unless one went out less than REKEY_TIMEOUT
    ///   ago (the retransmit timer of that round covers it).
    /// - Passive keepalive (§6.5): asks for a keepalive.
    /// - Persistent keepalive (wg(8) PersistentKeepalive): asks for a keepalive and re-arms a full
    ///   interval from `now`.
    /// - Zero keys (§6.3): asks to zero all key material.
    ///
    /// - Parameter now: the current instant.
    /// - Returns: the actions due; empty before ``nextDeadline``.
    public mutating func tick(now: Instant) -> TimerActions {
        var actions: TimerActions = []
        if let due = zeroKeysAt, due <= now {
            zeroKeysAt = nil
            rekeyedOnReceive = false
            actions.insert(.zeroKeys)
        }
        if let due = retransmitHandshakeAt, due <= now {
            retransmitHandshakeAt = nil
            if handshakeAttempts >= settings.maxHandshakeAttempts {
                handshakeAttempts = 0
                passiveKeepaliveAt = nil
                newHandshakeAt = nil
                if zeroKeysAt == nil && !actions.contains(.zeroKeys) {
                    zeroKeysAt = now + settings.zeroKeysAfter
                }
                actions.insert(.handshakeGaveUp)
            } else {
                actions.insert(.sendHandshakeInitiation)
            }
        }
        if let due = newHandshakeAt, due <= now {
            newHandshakeAt = nil
            actions.insert(.dataUnanswered)
            if initiationAllowed(now: now) { actions.insert(.sendHandshakeInitiation) }
        }
        if let due = passiveKeepaliveAt, due <= now {
            passiveKeepaliveAt = nil
            actions.insert(.sendKeepalive)
        }
        if let due = persistentKeepaliveAt, due <= now {
            persistentKeepaliveAt = persistentKeepalive > .zero ? now + persistentKeepalive : nil
            actions.insert(.sendKeepalive)
        }
        return actions
    }

    /// Disarms every timer and forgets the handshake round, e.g. when the peer is removed or the
    /// interface goes down. Settings and the persistent keepalive interval stay.
    public mutating func stop() {
        self = PeerTimers(settings: settings, persistentKeepalive: persistentKeepalive)
    }

    /// Changes the persistent keepalive interval (zero turns it off) and re-arms it from `now`.
    public mutating func setPersistentKeepalive(_ interval: Duration, now: Instant) {
        persistentKeepalive = max(interval, .zero)
        persistentKeepaliveAt = persistentKeepalive > .zero ? now + persistentKeepalive : nil
    }
}
