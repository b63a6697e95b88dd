// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

extension Tunnel {
    /// Handshake jobs in flight (deferred mode: made and not yet answered) at which we are under
    /// load, whatever the rate: wireguard-go's figure, an eighth of its 1024-job queue.
    public static let underLoadBacklog = HandshakeGate.underLoadBacklog

    // MARK: - Initiating

    /// Starts a handshake with `peer` unless one went out less than REKEY_TIMEOUT ago.
    func startHandshake(_ peer: Peer, now: Instant) {
        guard configuration.hasPrivateKey, peer.timers.initiationAllowed(now: now) else { return }
        sendInitiation(peer, now: now, isRetry: false)
    }

    /// Asks for a new initiation to `peer` and arms the retry timer; the message goes out when
    /// the processor's outcome is applied (at once in the inline mode).
    func sendInitiation(_ peer: Peer, now: Instant, isRetry: Bool) {
        guard configuration.hasPrivateKey, let destination = peer.endpoint else { return }
        if let old = peer.pendingInitiation { indexTable.remove(old.localIndex) }
        lastTicket &+= 1
        peer.lastTicket = lastTicket
        peer.initiation = .computing(ticket: lastTicket)
        peer.timers.handshakeInitiated(now: now, entropy: &jitter)
        peer.timers.anyAuthenticatedPacketSent(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        emit(.initiationStarted(peer: peer.configuration.publicKey, isRetry: isRetry))
        if isRetry && peer.timers.handshakeAttempts == 2 && peer.latestHandshake == nil
            && peer.configuration.endpoint != nil
        {
            // The first retry towards a configured peer that never answered. A wrong PublicKey for the
            // peer fails mac1 there, which is dropped without a word, so hint now, long before the
            // give-up.
            emit(.noResponseYet(peer: peer.configuration.publicKey, waited: peer.timers.settings.rekeyTimeout))
        }
        let job = HandshakeJob(
            work: .initiate(peer.handshakeInfo, timestamp: timestamps.timestamp()), peer: peer.number,
            ticket: peer.lastTicket, source: destination, submittedAt: now)
        _ = submit(job, now: now)
    }

    // MARK: - Handshake work: inline or deferred

    /// The processor for the owner's handshake thread (deferred mode): our identity and the
    /// configured peers. Every initiation of this interface must reach that one processor (it
    /// keeps the replay state).
    public func makeHandshakeProcessor() -> HandshakeProcessor {
        HandshakeProcessor(
            identity: identity,
            peers: configuration.peers.map { PeerHandshakeInfo(publicKey: $0.publicKey, presharedKey: $0.presharedKey) })
    }

    /// Tells the processor of a configuration change, in order with the handshake jobs; never
    /// refused (it is not handshake work a flood could multiply).
    func submitReconfiguration(_ change: HandshakeDirectoryChange, now: Instant) {
        guard !change.isEmpty else { return }
        let job = HandshakeJob(
            work: .reconfigure(change), peer: OutgoingFrame.noPeer, ticket: 0, source: Endpoint(ipv4: 0, 0, 0, 0, port: 0),
            submittedAt: now)
        switch handshakeExecution {
        case .inline:
            _ = processor!.process(job, entropy: &entropy)
        case .deferred:
            handshakeJobs.append(job)
            handshakesInFlight += 1
        }
    }

    /// The peer a job was made for, if it still holds that number: a peer added after the job
    /// was made (into a removed one's number) came after its ticket.
    func peer(of job: HandshakeJob) -> Peer? {
        guard job.peer != OutgoingFrame.noPeer, Int(job.peer) < peers.count, let peer = peers[Int(job.peer)],
            job.ticket > peer.createdAfterTicket
        else { return nil }
        return peer
    }

    /// Runs `job` now (inline: returns what applying it gave) or leaves it for
    /// ``takeHandshakeJobs()`` (deferred: returns nil, or `.drop(.queueFull)` when `capacity`
    /// jobs are in flight already).
    func submit(_ job: HandshakeJob, now: Instant) -> DecapsulateResult? {
        switch handshakeExecution {
        case .inline:
            return apply(processor!.process(job, entropy: &entropy), now: now)
        case .deferred(let capacity):
            guard handshakesInFlight < capacity else { return .drop(countQueueFull(job)) }
            handshakeJobs.append(job)
            handshakesInFlight += 1
            return nil
        }
    }

    private func countQueueFull(_ job: HandshakeJob) -> DropReason {
        if job.peer != OutgoingFrame.noPeer, Int(job.peer) < peers.count, let peer = peers[Int(job.peer)] {
            return peer.countReturning(.queueFull)
        }
        return countUnattributed(.queueFull)
    }

    /// Whether the deferred mode has jobs for ``takeHandshakeJobs()``.
    public var hasHandshakeJobs: Bool { !handshakeJobs.isEmpty }

    /// The jobs made since the last call, oldest first, for the owner's handshake thread (deferred
    /// mode; always empty inline). Each comes back through ``completeHandshake(_:now:)``, or
    /// through ``handshakeJobNotTaken(_:)`` when the thread could not queue it.
    public func takeHandshakeJobs() -> [HandshakeJob] {
        guard !handshakeJobs.isEmpty else { return [] }
        defer { handshakeJobs.removeAll(keepingCapacity: true) }
        return handshakeJobs
    }

    /// A job from ``takeHandshakeJobs()`` that the handshake thread could not queue: counted as
    /// `queue-full`, no longer in flight (the retry timer tries an initiation again). A
    /// reconfiguration is kept instead, and taken again by the next ``takeHandshakeJobs()``.
    public func handshakeJobNotTaken(_ job: HandshakeJob) {
        if case .reconfigure = job.work {
            handshakeJobs.append(job)
            return
        }
        if handshakesInFlight > 0 { handshakesInFlight -= 1 }
        _ = countQueueFull(job)
    }

    /// The most jobs the deferred mode keeps in flight (0 inline).
    public var handshakeCapacity: Int {
        if case .deferred(let capacity) = handshakeExecution { return capacity }
        return 0
    }

    /// Applies the outcome of a deferred job: sends the message it made, installs the session, or
    /// counts the refusal. Anything to send is in the outbox afterwards.
    public func completeHandshake(_ outcome: HandshakeOutcome, now: Instant) {
        if handshakesInFlight > 0 { handshakesInFlight -= 1 }
        _ = apply(outcome, now: now)
    }

    func apply(_ outcome: HandshakeOutcome, now: Instant) -> DecapsulateResult {
        let job = outcome.job
        switch outcome.result {
        case .initiation(let message, let pending):
            return applyInitiation(message, pending: pending, job: job, now: now)
        case .invalidPeerKey(let error):
            if let peer = peer(of: job) { emit(.initiationImpossible(peer: peer.configuration.publicKey, error)) }
            return .drop(.handshakeFailed)
        case .reconfigured:
            return .consumed
        case .unknownInitiator(let key):
            // Only a respond job ends so; a key made a peer since is no stranger any more.
            guard peersByKey[key] == nil else { return .drop(countUnattributed(.unknownPeer)) }
            unknownInitiators.note(key, from: job.source, now: now)
            emit(.initiationFromUnknownKey(publicKey: key, source: job.source))
            return .drop(countUnattributed(.unknownPeer))
        case .response(let message, let keys):
            return applyResponse(message, keys: keys, job: job, now: now)
        case .completed(let keys):
            return applyCompleted(keys, job: job, now: now)
        case .refused(let reason):
            switch job.work {
            case .initiate:
                return .drop(reason)
            case .respond:
                if reason == .handshakeFailed {
                    emit(.initiationNotDecrypted(source: job.source))
                }
                return .drop(countUnattributed(reason))
            case .reconfigure:
                return .consumed
            case .complete:
                guard let peer = peer(of: job) else { return .drop(countUnattributed(reason)) }
                if reason == .handshakeFailed {
                    emit(.responseNotAuthenticated(peer: peer.configuration.publicKey, source: job.source))
                }
                return .drop(peer.countReturning(reason))
            }
        }
    }

    /// Sends an initiation the processor wrote, unless a newer one (or a give-up) superseded it.
    private func applyInitiation(
        _ message: HandshakeMessage, pending: PendingInitiation, job: HandshakeJob, now: Instant
    ) -> DecapsulateResult {
        guard let peer = peer(of: job), case .computing(let ticket) = peer.initiation, ticket == job.ticket,
            let destination = peer.endpoint
        else {
            return .consumed  // stale: a newer initiation is on its way
        }
        let localIndex = newLocalIndex()
        guard enqueueStamped(message, senderIndex: localIndex, for: peer, to: destination, now: now) else { return .drop(peer.countReturning(.queueFull)) }
        indexTable.insert(localIndex, peer: peer.number)
        peer.initiation = .awaitingResponse(pending.withLocalIndex(localIndex))
        peer.initiationsSent &+= 1
        if peer.selector != nil && !peer.canSend(now: now) { peer.selector!.initiationSent(now: now) }
        return .consumed
    }

    /// Queues a message the processor wrote, with our sender index and `peer`'s MACs. Stamped in
    /// the outbox slot, so the cookie jar remembers the mac1 of a message that is really sent.
    /// False when the outbox is full.
    private func enqueueStamped(
        _ message: HandshakeMessage, senderIndex: UInt32, for peer: Peer, to destination: Endpoint, now: Instant
    ) -> Bool {
        outbox.enqueue(destination: destination, peer: peer.number) { buffer in
            message.withUnsafeBytes { buffer.append(contentsOf: $0) }
            let sent = buffer.bytes
            // Both messages carry the sender index at offset 4 (MessageLayout).
            sent.storeLE32(senderIndex, at: MessageLayout.Initiation.senderIndex)
            peer.cookieJar.stampMACs(sent, now: now)
            return true
        }
    }

    /// Answers an initiation that authenticated: sends the response, installs the session as
    /// the responder's next keypair.
    private func applyResponse(
        _ message: HandshakeMessage, keys: SessionKeys, job: HandshakeJob, now: Instant
    ) -> DecapsulateResult {
        guard job.ticket == identityGeneration else { return .drop(countUnattributed(.handshakeFailed)) }
        guard let number = peersByKey[keys.remoteStatic], let peer = peers[number] else {
            return .drop(countUnattributed(.unknownPeer))
        }
        let localIndex = newLocalIndex()
        guard enqueueStamped(message, senderIndex: localIndex, for: peer, to: job.source, now: now) else { return .drop(peer.countReturning(.queueFull)) }
        let keys = keys.withLocalIndex(localIndex)
        let keypair = Keypair(
            sendKey: keys.sendKey, receiveKey: keys.receiveKey, localIndex: keys.localIndex,
            remoteIndex: keys.remoteIndex, created: now, isInitiator: false, cipher: identity.cipher)
        indexTable.remove(peer.slots.installResponded(keypair))
        indexTable.insert(localIndex, peer: peer.number)
        updateEndpoint(peer, job.source, now: now)
        peer.timers.anyAuthenticatedPacketReceived(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.sessionDerived(now: now)
        peer.timers.anyAuthenticatedPacketSent(now: now)
        peer.timers.handshakeResponseSent(now: now)
        peer.initiationsAnswered &+= 1
        emit(.initiationAnswered(peer: peer.configuration.publicKey, source: job.source))
        return .consumed
    }

    /// Installs the session of a response that authenticated, if its initiation is still the one
    /// we wait for.
    private func applyCompleted(_ keys: SessionKeys, job: HandshakeJob, now: Instant) -> DecapsulateResult {
        guard let peer = peer(of: job) else { return .drop(countUnattributed(.unexpectedHandshake)) }
        guard let pending = peer.pendingInitiation, pending.localIndex == keys.localIndex else {
            return .drop(peer.countReturning(.unexpectedHandshake))  // superseded while it was computed
        }
        peer.initiation = .idle
        peer.responsesReceived &+= 1
        peer.initiationsUnansweredInARow = 0
        let keypair = Keypair(
            sendKey: keys.sendKey, receiveKey: keys.receiveKey, localIndex: keys.localIndex,
            remoteIndex: keys.remoteIndex, created: now, isInitiator: true, cipher: identity.cipher)
        indexTable.remove(peer.slots.installInitiated(keypair))
        updateEndpoint(peer, job.source, now: now)
        peer.lastAuthenticatedAt = now
        peer.selector?.received(over: job.source.carrier, now: now)
        peer.timers.anyAuthenticatedPacketReceived(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        peer.timers.sessionDerived(now: now)
        sessionEstablished(peer, weInitiated: true, now: now)
        return .consumed
    }

    /// Starts a handshake with every peer that has an endpoint and no usable session: used at
    /// start-up so the first packet does not wait for one.
    public func initiateHandshakes(now: Instant) {
        for case let peer? in peers where peer.endpoint != nil && peer.slots.current == nil {
            startHandshake(peer, now: now)
        }
    }

    /// Points the peer with `publicKey` at `endpoint` (a re-resolved host name) and, if it has no
    /// session, starts a handshake there. Returns false when no such peer exists.
    @discardableResult
    public func setEndpoint(publicKey: Bytes32, endpoint: Endpoint, now: Instant) -> Bool {
        guard let number = peersByKey[publicKey], let peer = peers[number] else { return false }
        updateEndpoint(peer, endpoint, now: now)
        if peer.slots.current == nil { startHandshake(peer, now: now) }
        return true
    }

    func newLocalIndex() -> UInt32 {
        indexTable.newIndex(using: &entropy)
    }

    // MARK: - Responding

    /// Admission of an initiation or a response (``HandshakeGate``): nil to go on, or the
    /// result to return. The MACs are checked before anything is queued, so a full outbox can
    /// cost at most the cookie reply, never a valid message.
    func admit(_ message: UnsafeRawBufferPointer, from source: Endpoint, isInitiation: Bool, now: Instant)
        -> DecapsulateResult?
    {
        guard configuration.hasPrivateKey else { return .drop(countUnattributed(.noPrivateKey)) }
        switch admission.check(message, from: source, isInitiation: isInitiation, jobsInFlight: handshakesInFlight, now: now) {
        case .admit:
            return nil
        case .drop(let reason):
            return .drop(countUnattributed(reason))
        case .cookieReply:
            let queued = outbox.enqueue(destination: source, peer: OutgoingFrame.noPeer) { buffer in
                let reply = buffer.append(Spec.cookieReplySize)
                admission.writeCookieReply(answering: message, source: source, now: now, entropy: &entropy, into: reply)
                return true
            }
            if !queued { _ = countUnattributed(.queueFull) }
            return .drop(countUnattributed(.invalidMAC2))
        }
    }

    func receiveInitiation(_ datagram: PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        if let refused = admit(message, from: source, isInitiation: true, now: now) { return refused }
        let job = HandshakeJob(
            work: .respond(HandshakeMessage(message)), peer: OutgoingFrame.noPeer, ticket: identityGeneration, source: source,
            submittedAt: now)
        return submit(job, now: now) ?? .consumed
    }

    func receiveResponse(_ datagram: PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        if let refused = admit(message, from: source, isInitiation: false, now: now) { return refused }
        let receiverIndex = message.loadLE32(at: MessageLayout.Response.receiverIndex)
        guard let number = indexTable[receiverIndex], let peer = peers[Int(number)] else {
            return .drop(countUnattributed(.unexpectedHandshake))
        }
        guard let pending = peer.pendingInitiation, pending.localIndex == receiverIndex else {
            return .drop(peer.countReturning(.unexpectedHandshake))
        }
        let job = HandshakeJob(
            work: .complete(HandshakeMessage(message), pending: pending), peer: peer.number, ticket: peer.lastTicket,
            source: source, submittedAt: now)
        return submit(job, now: now) ?? .consumed
    }

    func receiveCookieReply(_ datagram: PacketBuffer, now: Instant) -> DecapsulateResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        let receiverIndex = message.loadLE32(at: MessageLayout.CookieReply.receiverIndex)
        guard let number = indexTable[receiverIndex], let peer = peers[Int(number)] else {
            return .drop(countUnattributed(.unexpectedHandshake))
        }
        if let reason = peer.cookieJar.consumeCookieReply(message, now: now) {
            return .drop(peer.countReturning(reason))
        }
        peer.cookieRepliesReceived &+= 1
        emit(.cookieReceived(peer: peer.configuration.publicKey))
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
