// SPDX-License-Identifier: MIT
import VPNBasics

/// The timers' work: retries, keepalives, key expiry, and the packets staged for a session.
extension Tunnel {
    // MARK: - Timers

    /// Runs every peer's due timers: retries, keepalives, key expiry. Only the peers whose
    /// deadline (``DeadlineBook``) is due are visited.
    public func tick(now: Instant) {
        updateDeadlines()
        let limit = now.nanoseconds
        for index in deadlineBook.deadlines.indices where deadlineBook.deadlines[index] <= limit {
            guard let peer = peers[index] else { continue }
            if let due = peer.prober.deadline, due <= now {
                peer.prober.tick(now: now)
                serviceProber(peer, now: now)
            }
            if let due = peer.selector?.deadline, due <= now { serviceCarrier(peer, now: now) }
            if let due = peer.reconnectCheckAt, due <= now { checkReconnect(peer, now: now) }
            guard let deadline = peer.timers.nextDeadline, deadline <= now else { continue }
            let actions = peer.timers.tick(now: now)
            if actions.contains(.zeroKeys) {
                // As TimerActions.zeroKeys asks (and wireguard-go's ZeroAndFlushAll): the keys, the
                // partial handshake (one being computed turns stale) and the packets still waiting
                // for one all go.
                releaseStaging(peer)
                indexTable.remove(peer.slots.clear())
                if let pending = peer.pendingInitiation { indexTable.remove(pending.localIndex) }
                if case .gaveUp = peer.initiation {} else { peer.initiation = .idle }
            }
            if actions.contains(.handshakeGaveUp) {
                releaseStaging(peer)
                if let pending = peer.pendingInitiation {
                    indexTable.remove(pending.localIndex)
                    peer.noteInitiationUnanswered()
                }
                if case .gaveUp = peer.initiation {} else {
                    peer.initiation = .gaveUp
                    emit(.handshakeGaveUp(
                        peer: peer.configuration.publicKey, after: peer.timers.settings.rekeyAttemptTime,
                        configuredEndpoint: peer.configuration.endpoint != nil))
                }
            }
            if actions.contains(.dataUnanswered) { dataWentUnanswered(peer, now: now) }
            if actions.contains(.sendHandshakeInitiation) {
                // The retry timer fired with our last initiation still waiting: it went unanswered.
                if peer.pendingInitiation != nil { peer.noteInitiationUnanswered() }
                sendInitiation(peer, now: now, isRetry: true)
            }
            if actions.contains(.sendKeepalive) {
                sendKeepalive(peer, now: now)
            }
        }
    }

    // MARK: - Helpers

    /// Sends a keepalive to `peer` like any other packet (wireguard-go's `SendKeepalive`): sealed
    /// into the outbox on the current key, followed by the rekey-on-send check; with no usable
    /// key, an empty packet is staged (unless something is staged already) and a handshake starts,
    /// so an idle peer with PersistentKeepalive keeps a session, and its NAT mapping, for good.
    func sendKeepalive(_ peer: Peer, now: Instant) {
        guard let destination = peer.endpoint else { return }
        guard peer.canSend(now: now) else {
            if peer.staged?.isEmpty ?? true {
                _ = stagingQueue(for: peer).enqueue(destination: destination, peer: peer.number) { _ in true }
            }
            startHandshake(peer, now: now)
            return
        }
        var rekey = false
        let queued = outbox.enqueue(destination: destination, peer: peer.number) { buffer in
            guard let due = peer.sealWithCurrentKey(
                &buffer, padding: configuration.pads, mtu: peer.prober.mtu, now: now, jitter: &jitter)
            else { return false }
            rekey = due
            return true
        }
        guard queued else { return peer.count(.queueFull) }
        if rekey { startHandshake(peer, now: now) }
    }

    /// Seals every staged packet of `peer` into the outbox, in order; sends a keepalive if none
    /// was staged and we are the initiator (so the responder can confirm the session).
    func flushStaged(_ peer: Peer, now: Instant) {
        guard let destination = peer.endpoint, peer.canSend(now: now) else { return }
        var sent = 0
        while let staged = peer.staged, !staged.isEmpty {
            var ok = true
            staged.dequeue { frame in
                let source = UnsafeRawBufferPointer(frame.buffer.bytes)
                ok = outbox.enqueue(destination: destination, peer: peer.number) { buffer in
                    buffer.append(contentsOf: source)
                    return peer.sealWithCurrentKey(
                        &buffer, padding: configuration.pads, mtu: max(peer.prober.mtu, source.count), now: now,
                        jitter: &jitter) != nil
                }
                if !ok { peer.count(.queueFull) }
            }
            if ok { sent += 1 }
        }
        releaseStaging(peer)
        if sent == 0 && peer.slots.current?.isInitiator == true {
            sendKeepalive(peer, now: now)
        }
    }

    /// The peer's staging queue, taken from the spare ones (or made) when it has none.
    func stagingQueue(for peer: Peer) -> FrameQueue {
        if let staged = peer.staged { return staged }
        let staged =
            spareStagingQueues.popLast()
            ?? FrameQueue(capacity: configuration.stagedPacketsPerPeer, slotSize: slotSize, headroom: TransportData.headroom)
        peer.staged = staged
        return staged
    }

    /// Drops what the peer has staged and takes its queue back: kept for the next peer that
    /// needs one, up to ``Tuning/spareStagingQueues``, freed beyond that.
    func releaseStaging(_ peer: Peer) {
        guard let staged = peer.staged else { return }
        staged.removeAll()
        peer.staged = nil
        if spareStagingQueues.count < Tuning.spareStagingQueues { spareStagingQueues.append(staged) }
    }
}
