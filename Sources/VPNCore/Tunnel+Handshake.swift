// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

extension Tunnel {
    /// More initiations than this within one second puts the interface under load: initiations
    /// then need a valid mac2 (a cookie) and are rate-limited per source (whitepaper 5.3).
    static let underLoadInitiationsPerSecond = 64
    /// How long the under-load state lasts after the last burst (wireguard-go: 1 s).
    static let underLoadHold: Duration = .seconds(1)

    // MARK: - Initiating

    /// Starts a handshake with `peer` unless one went out less than REKEY_TIMEOUT ago.
    func startHandshake(_ peer: Peer, now: Instant) {
        guard peer.timers.initiationAllowed(now: now) else { return }
        sendInitiation(peer, now: now, isRetry: false)
    }

    /// Writes a new initiation for `peer` into the outbox and arms the retry timer.
    func sendInitiation(_ peer: Peer, now: Instant, isRetry: Bool) {
        guard let destination = peer.endpoint else { return }
        if !isRetry && peer.pendingInitiation == nil { peer.reportedGiveUp = false }
        if let old = peer.pendingInitiation {
            indexTable[old.localIndex] = nil
            peer.pendingInitiation = nil
        }
        let localIndex = newLocalIndex()
        var pending: PendingInitiation? = nil
        var failure: HandshakeError? = nil
        let timestamp = timestamps.timestamp()
        outbox.enqueue(destination: destination, peer: peer.number) { buffer in
            let message = buffer.append(Spec.initiationSize)
            do throws(HandshakeError) {
                pending = try identity.createInitiation(
                    peer: peer.handshakeInfo, localIndex: localIndex, timestamp: timestamp, cookieJar: &peer.cookieJar,
                    now: now, entropy: &entropy, into: message)
                return true
            } catch {
                failure = error
                return false
            }
        }
        if let failure {
            note(.warning, "peer \(shortKey(peer)): \(failure)")
            return
        }
        guard let pending else { return peer.count(.queueFull) }
        indexTable[localIndex] = peer.number
        peer.pendingInitiation = pending
        peer.timers.handshakeInitiated(now: now, entropy: &entropy)
        peer.timers.anyAuthenticatedPacketSent(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        note(.debug, "peer \(shortKey(peer)): sending handshake initiation\(isRetry ? " (retry)" : "")")
        if isRetry && peer.timers.handshakeAttempts == 2 && peer.latestHandshake == nil
            && peer.configuration.endpoint != nil
        {
            // The first retry towards a configured peer that never answered. A wrong PublicKey for the
            // peer fails mac1 there, which is dropped without a word, so hint now, long before the
            // give-up warning (info: a peer that is merely not up yet is no mistake).
            let waited = PeerTimers.seconds(peer.timers.settings.rekeyTimeout)
            note(.info,
                "peer \(shortKey(peer)): no valid handshake response after \(waited) s, still trying: check the peer's Endpoint and PublicKey, and that both ends use the same PresharedKey, Mode and Transport")
        }
    }

    /// Forgets every session and starts new handshakes (a TCP transport reconnected: the server
    /// may have lost our keys with the old connection).
    public func restartSessions(now: Instant) {
        for peer in peers {
            for index in peer.slots.clear() { indexTable[index] = nil }
            if peer.endpoint != nil {
                sendInitiation(peer, now: now, isRetry: false)
            }
        }
    }

    /// Starts a handshake with every peer that has an endpoint and no usable session: used at
    /// start-up so the first packet does not wait for one.
    public func initiateHandshakes(now: Instant) {
        for peer in peers where peer.endpoint != nil && peer.slots.current == nil {
            startHandshake(peer, now: now)
        }
    }

    /// Points the peer with `publicKey` at `endpoint` (a re-resolved host name) and, if it has no
    /// session, starts a handshake there. Returns false when no such peer exists.
    @discardableResult
    public func setEndpoint(publicKey: Bytes32, endpoint: Endpoint, now: Instant) -> Bool {
        guard let number = peersByKey[publicKey] else { return false }
        let peer = peers[number]
        updateEndpoint(peer, endpoint)
        if peer.slots.current == nil { startHandshake(peer, now: now) }
        return true
    }

    func newLocalIndex() -> UInt32 {
        HandshakeIdentity.newLocalIndex(using: &entropy) { indexTable[$0] != nil }
    }

    // MARK: - Responding

    /// Tracks the initiation rate and says whether we are under load.
    func noteInitiationAndCheckLoad(now: Instant) -> Bool {
        if now - loadWindowStart >= .seconds(1) {
            loadWindowStart = now
            initiationsInWindow = 0
        }
        initiationsInWindow += 1
        if initiationsInWindow > Self.underLoadInitiationsPerSecond {
            underLoadUntil = now + Self.underLoadHold
        }
        return now < underLoadUntil
    }

    /// Admission (mac1; mac2 and rate limit under load), shared by initiations and responses.
    /// Returns nil to go on, or the result to return.
    func admit(_ message: UnsafeRawBufferPointer, from source: Endpoint, underLoad: Bool, now: Instant)
        -> DecapsulateResult?
    {
        var verdict = HandshakeAdmission.drop(.invalidMAC1)
        let queued = outbox.enqueue(destination: source, peer: OutgoingFrame.noPeer) { buffer in
            let reply = buffer.append(Spec.cookieReplySize)
            verdict = cookieChecker.admit(
                message, source: source, underLoad: underLoad, now: now, entropy: &entropy, cookieReply: reply)
            return verdict == .sendCookieReply
        }
        switch verdict {
        case .proceed:
            if underLoad && !rateLimiter.allow(source, now: now) { return .drop(countUnattributed(.rateLimited)) }
            return nil
        case .sendCookieReply:
            if !queued { countUnattributed(.queueFull) }
            return .drop(countUnattributed(.invalidMAC2))
        case .drop(let reason):
            return .drop(countUnattributed(reason))
        }
    }

    func receiveInitiation(_ datagram: PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        let underLoad = noteInitiationAndCheckLoad(now: now)
        if let refused = admit(message, from: source, underLoad: underLoad, now: now) { return refused }
        let consumed: ConsumedInitiation
        switch identity.consumeInitiation(message, now: now, lookupPeer: { key in
            peersByKey[key].map { peers[$0].handshakeInfo }
        }) {
        case .accepted(let value): consumed = value
        case .drop(let reason):
            if reason == .handshakeFailed {
                note(.debug, "handshake initiation from \(source) did not decrypt: wrong key, or a peer in the other Mode (tun/tap)")
            } else if reason == .unknownPeer {
                note(.debug, "handshake initiation from \(source) by a public key that is not a [Peer] here")
            }
            return .drop(countUnattributed(reason))
        }
        guard let number = peersByKey[consumed.peerPublicKey] else { return .drop(countUnattributed(.unknownPeer)) }
        let peer = peers[number]
        // Only now, authenticated, may the initiation change state.
        peer.handshakeInfo.lastTimestamp = consumed.timestamp
        peer.handshakeInfo.lastInitiationAt = now
        let localIndex = newLocalIndex()
        var keys: SessionKeys? = nil
        outbox.enqueue(destination: source, peer: peer.number) { buffer in
            let message = buffer.append(Spec.responseSize)
            keys = identity.createResponse(
                to: consumed, localIndex: localIndex, cookieJar: &peer.cookieJar, now: now, entropy: &entropy,
                into: message
            ).value
            return keys != nil
        }
        guard let keys else { return .drop(peer.countReturning(.queueFull)) }
        let keypair = Keypair(
            sendKey: keys.sendKey, receiveKey: keys.receiveKey, localIndex: keys.localIndex,
            remoteIndex: keys.remoteIndex, created: now, isInitiator: false)
        for retired in peer.slots.installResponded(keypair) { indexTable[retired] = nil }
        indexTable[localIndex] = peer.number
        updateEndpoint(peer, source)
        peer.timers.anyAuthenticatedPacketReceived(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.sessionDerived(now: now)
        peer.timers.anyAuthenticatedPacketSent(now: now)
        note(.debug, "peer \(shortKey(peer)): answered handshake initiation from \(source)")
        return .consumed
    }

    func receiveResponse(_ datagram: PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        let underLoad = now < underLoadUntil
        if let refused = admit(message, from: source, underLoad: underLoad, now: now) { return refused }
        let receiverIndex = message.loadLE32(at: MessageLayout.Response.receiverIndex)
        guard let number = indexTable[receiverIndex] else { return .drop(countUnattributed(.unexpectedHandshake)) }
        let peer = peers[Int(number)]
        guard let pending = peer.pendingInitiation, pending.localIndex == receiverIndex else {
            return .drop(peer.countReturning(.unexpectedHandshake))
        }
        let keys: SessionKeys
        switch identity.consumeResponse(message, pending: pending) {
        case .accepted(let value): keys = value
        case .drop(let reason):
            if reason == .handshakeFailed {
                note(.warning,
                    "peer \(shortKey(peer)): handshake response from \(source) did not authenticate: check both ends' keys, PresharedKey and Mode (tun/tap)")
            }
            return .drop(peer.countReturning(reason))
        }
        peer.pendingInitiation = nil
        let keypair = Keypair(
            sendKey: keys.sendKey, receiveKey: keys.receiveKey, localIndex: keys.localIndex,
            remoteIndex: keys.remoteIndex, created: now, isInitiator: true)
        for retired in peer.slots.installInitiated(keypair) { indexTable[retired] = nil }
        updateEndpoint(peer, source)
        let firstSession = peer.latestHandshake == nil
        peer.latestHandshake = now
        peer.reportedGiveUp = false
        peer.timers.anyAuthenticatedPacketReceived(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.handshakeCompleted(now: now)
        peer.timers.sessionDerived(now: now)
        note(firstSession ? .info : .debug, "peer \(shortKey(peer)): handshake completed (we initiated), session established")
        flushStaged(peer, now: now)
        return .consumed
    }

    func receiveCookieReply(_ datagram: PacketBuffer, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        let receiverIndex = message.loadLE32(at: MessageLayout.CookieReply.receiverIndex)
        guard let number = indexTable[receiverIndex] else { return .drop(countUnattributed(.unexpectedHandshake)) }
        let peer = peers[Int(number)]
        if let reason = peer.cookieJar.consumeCookieReply(message, now: now) {
            return .drop(peer.countReturning(reason))
        }
        note(.debug, "peer \(shortKey(peer)): received a cookie reply (the peer is under load)")
        return .consumed
    }
}

extension Peer {
    @inline(__always)
    func countReturning(_ reason: DropReason) -> DropReason {
        count(reason)
        return reason
    }
}
