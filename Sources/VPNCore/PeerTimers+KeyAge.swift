// SPDX-License-Identifier: MIT
import VPNBasics

/// Questions the owner asks per packet: may a key still be used, and is it time to rekey.
///
/// The keypair's creation instant and counter are passed in rather than mirrored here, so they
/// cannot drift from the session that owns them. Each answer is a few comparisons; none allocates.
extension PeerTimers {
    /// Whether a handshake initiation may go out now: none was sent in the last REKEY_TIMEOUT.
    ///
    /// WireGuard never sends initiations more often than that (§6.1); a request inside the window
    /// is dropped because the pending initiation's retransmit timer already covers it.
    public func initiationAllowed(now: Instant) -> Bool {
        guard let last = lastHandshakeSent else { return true }
        return now - last >= settings.rekeyTimeout
    }

    /// Whether the current sending key may seal another packet: younger than REJECT_AFTER_TIME and
    /// its next counter below REJECT_AFTER_MESSAGES (§6.2).
    ///
    /// - Parameters:
    ///   - keyCreated: when the keypair was derived.
    ///   - sendCounter: the counter the next packet would carry.
    ///   - now: the current instant.
    public func keyUsableForSending(keyCreated: Instant, sendCounter: UInt64, now: Instant) -> Bool {
        sendCounter < settings.rejectAfterMessages && now - keyCreated < settings.rejectAfterTime
    }

    /// Whether a receiving key may still open packets: no older than REJECT_AFTER_TIME (§6.2).
    ///
    /// The counter limit on receive is the replay window's check.
    public func keyUsableForReceiving(keyCreated: Instant, now: Instant) -> Bool {
        now - keyCreated <= settings.rejectAfterTime
    }

    /// Whether sending on the current key should start a new handshake now (§6.2).
    ///
    /// True when an initiation is allowed (``initiationAllowed(now:)``) and either the key's
    /// sending counter passed REKEY_AFTER_MESSAGES, or this side initiated the session and the key
    /// is older than REKEY_AFTER_TIME. Only the initiator rekeys on age, so the two sides do not
    /// both start a handshake at the same moment. Ask before sending each data packet; send the
    /// packet on the current key regardless, and report the initiation with
    /// ``handshakeInitiated(now:entropy:)``.
    ///
    /// - Parameters:
    ///   - keyCreated: when the current keypair was derived.
    ///   - isInitiator: whether this side sent the initiation that created it.
    ///   - sendCounter: the key's sending counter (messages sent so far).
    ///   - now: the current instant.
    public func shouldRekeyOnSend(keyCreated: Instant, isInitiator: Bool, sendCounter: UInt64, now: Instant) -> Bool {
        let due =
            sendCounter > settings.rekeyAfterMessages
            || (isInitiator && now - keyCreated > settings.rekeyAfterTime)
        return due && initiationAllowed(now: now)
    }

    /// Whether receiving data on the current key should start a new handshake now: the last
    /// chance for the initiator to rekey before the key expires (§6.2).
    ///
    /// True, once per session, when this side initiated the session, the key is older than
    /// REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT − REKEY_TIMEOUT (165 s) and an initiation is allowed.
    /// ``handshakeCompleted(now:)`` and ``TimerActions/zeroKeys`` re-enable it. Ask after a data
    /// packet on the current key authenticated; report the initiation with
    /// ``handshakeInitiated(now:entropy:)``.
    public mutating func shouldRekeyOnReceive(keyCreated: Instant, isInitiator: Bool, now: Instant) -> Bool {
        guard !rekeyedOnReceive, isInitiator, now - keyCreated > settings.rekeyOnReceiveAge,
            initiationAllowed(now: now)
        else { return false }
        rekeyedOnReceive = true
        return true
    }
}
