// SPDX-License-Identifier: MIT
import VPNBasics

extension Peer {
    /// Whether the current session may send now (REJECT_AFTER_TIME, REJECT_AFTER_MESSAGES).
    @inline(__always)
    func canSend(now: Instant) -> Bool { sendCounter(now: now) != nil }

    /// The current session's next send counter, when its key may send now.
    @inline(__always)
    private func sendCounter(now: Instant) -> UInt64? {
        // Field by field from the box: the keypair (with its 1 KiB replay window) is never copied
        // per packet (the `current` getter returns a copy).
        guard let box = slots.storage, let created = box.current?.created,
            let counter = box.current?.sendCounter,
            timers.keyUsableForSending(keyCreated: created, sendCounter: counter, now: now)
        else { return nil }
        return counter
    }

    /// Seals the plaintext in `buffer` (a packet, or nothing for a keepalive) with the current
    /// session's next counter, and books it: the counters and the timers of a sent packet.
    /// Returns nil when no key may send now, else whether a rekey is due (REKEY_AFTER_TIME or
    /// REKEY_AFTER_MESSAGES; the caller starts the handshake).
    ///
    /// `buffer` needs ``TransportData/headroom`` in front and ``TransportData/tailroom`` behind;
    /// `mtu` bounds the padding. With `batch` (and room in it) the message is laid out and its
    /// encryption left in `batch` for the owner to run before it sends the message.
    @inline(__always)
    func sealWithCurrentKey(
        _ buffer: inout PacketBuffer, padding: Bool, mtu: Int, now: Instant, jitter: inout SplitMix64,
        deferTo batch: CryptoBatch? = nil
    ) -> Bool? {
        guard let counter = sendCounter(now: now) else { return nil }
        let plaintextCount = buffer.count
        let rekey = slots.withKeypair(.current) { keypair -> Bool in
            keypair.sendCounter = counter + 1
            if let batch, batch.hasRoom {
                let (body, tag) = TransportData.layOut(
                    &buffer, receiverIndex: keypair.remoteIndex, counter: counter, padding: padding, mtu: mtu)
                batch.appendSeal(body: body, tag: tag, counter: counter, key: keypair.sendKey)
            } else {
                TransportData.seal(
                    &buffer, receiverIndex: keypair.remoteIndex, counter: counter, key: keypair.sendKey,
                    padding: padding, mtu: mtu)
            }
            return timers.shouldRekeyOnSend(
                keyCreated: keypair.created, isInitiator: keypair.isInitiator, sendCounter: counter + 1, now: now)
        }
        sentPackets &+= 1  // a keepalive counts as a packet of no bytes, as the receiver counts it
        sentBytes &+= UInt64(plaintextCount)
        if plaintextCount > 0 { timers.dataSent(now: now, entropy: &jitter) }
        timers.anyAuthenticatedPacketSent(now: now)
        timers.anyAuthenticatedPacketTraversal(now: now)
        if selector != nil { selector!.sent(now: now) }
        return rekey
    }
}
