// SPDX-License-Identifier: MIT
import VPNBasics

/// The events the owner reports, one per wireguard-go `timers*` hook.
extension PeerTimers {
    /// Call after an authenticated data packet (non-empty payload) was sent.
    ///
    /// Arms the new-handshake timer for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter unless it is
    /// already armed, so it measures from the first packet the peer has not answered (§6.5).
    /// Draws entropy only when it arms the timer.
    public mutating func dataSent(now: Instant, entropy: inout some EntropySource) {
        guard newHandshakeAt == nil else { return }
        newHandshakeAt = now + settings.newHandshakeTimeout + jitter(&entropy)
    }

    /// Call after an authenticated data packet (non-empty payload) was received.
    ///
    /// Arms the passive keepalive for KEEPALIVE_TIMEOUT unless it is already armed, so the peer
    /// hears from us within that time of its first unanswered packet (§6.5).
    public mutating func dataReceived(now: Instant) {
        guard passiveKeepaliveAt == nil else { return }
        passiveKeepaliveAt = now + settings.keepaliveTimeout
    }

    /// Call after any authenticated packet was sent: data, keepalive or handshake message.
    ///
    /// Disarms the passive keepalive: the peer just heard from us (§6.5).
    public mutating func anyAuthenticatedPacketSent(now: Instant) {
        passiveKeepaliveAt = nil
    }

    /// Call after any authenticated packet was received: data, keepalive or handshake message.
    ///
    /// Disarms the new-handshake timer: the peer is alive (§6.5).
    public mutating func anyAuthenticatedPacketReceived(now: Instant) {
        newHandshakeAt = nil
    }

    /// Call when any authenticated packet is sent or received.
    ///
    /// Re-arms the persistent keepalive a full interval from `now` when one is configured, so it
    /// fires only after that long without traffic in either direction (wg(8), PersistentKeepalive).
    public mutating func anyAuthenticatedPacketTraversal(now: Instant) {
        guard persistentKeepalive > .zero else { return }
        persistentKeepaliveAt = now + persistentKeepalive
    }

    /// Call after a handshake initiation was sent, whatever asked for it.
    ///
    /// Counts the attempt in the current round (starting a round if none is under way), records
    /// the send for the REKEY_TIMEOUT rate limit, and arms the retransmit timer for
    /// REKEY_TIMEOUT + a jitter of 0 to 333 ms (§6.4).
    public mutating func handshakeInitiated(now: Instant, entropy: inout some EntropySource) {
        handshakeAttempts += 1
        lastHandshakeSent = now
        retransmitHandshakeAt = now + settings.rekeyTimeout + jitter(&entropy)
    }

    /// Call after a handshake response was sent (as responder).
    ///
    /// Like an initiation it counts as a recent handshake for the REKEY_TIMEOUT rate limit, as
    /// wireguard-go's `SendHandshakeResponse` sets `lastSentHandshake`: a packet from the tun before
    /// the initiator's key confirmation then waits for that session instead of starting a second,
    /// crossing handshake.
    public mutating func handshakeResponseSent(now: Instant) {
        lastHandshakeSent = now
    }
    /// Call when a handshake completed: as initiator on a valid response, as responder on the
    /// first data packet under the new keypair (key confirmation).
    ///
    /// Ends the handshake round: disarms the retransmit timer, resets the attempt count and allows
    /// the last-minute rekey on receive again (§6.2, §6.4).
    public mutating func handshakeCompleted(now: Instant) {
        retransmitHandshakeAt = nil
        handshakeAttempts = 0
        rekeyedOnReceive = false
        lastHandshakeCompleted = now
    }

    /// Call when session keys were derived: as responder before sending the response, as
    /// initiator after processing it.
    ///
    /// Re-arms the zero-keys timer for REJECT_AFTER_TIME × 3 from `now` (§6.3).
    public mutating func sessionDerived(now: Instant) {
        zeroKeysAt = now + settings.zeroKeysAfter
    }

    /// A random jitter in 0...``TimerSettings/rekeyTimeoutJitter`` (§6.4).
    func jitter(_ entropy: inout some EntropySource) -> Duration {
        let limit = settings.rekeyTimeoutJitter.nanosecondsClamped
        guard limit > 0 else { return .zero }
        return .nanoseconds(Int64(entropy.next(below: UInt64(limit) + 1)))
    }
}
