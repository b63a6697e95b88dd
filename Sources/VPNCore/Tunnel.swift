// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The result of ``Tunnel/encapsulate(_:now:)``.
public enum EncapsulateResult: Sendable {
    /// The buffer now holds a sealed data message: send it to this endpoint.
    case send(Endpoint)
    /// No session yet: the packet was copied into the peer's staging queue and a handshake is
    /// under way; the buffer may be reused.
    case staged
    /// The packet is larger than the peer's path carries: the buffer now holds the ICMP error
    /// ("fragmentation needed" / "packet too big") for its sender; write it to the device.
    case reply
    /// Refused, for this reason.
    case drop(DropReason)
}

/// The result of ``Tunnel/decapsulate(_:from:now:)``.
public enum DecapsulateResult: Sendable, Equatable {
    /// The buffer now holds an authenticated inner packet (padding removed): write it to the
    /// device.
    case deliver
    /// A handshake message or keepalive, handled; anything to send in reply is in the outbox.
    case consumed
    /// Refused, for this reason.
    case drop(DropReason)
}

/// The sans-IO protocol core of one interface: every peer's sessions, handshakes and timers,
/// cryptokey routing and the DoS defences. Bytes, instants, entropy and wall-clock timestamps
/// go in; results, outgoing frames and log events come out. No syscalls, no clock, no logging.
///
/// Not thread-safe; owned by one data-plane thread.
public final class Tunnel {
    /// The configuration in force: the one the tunnel was built from, with the changes applied
    /// since (``apply(_:now:)``).
    public internal(set) var configuration: TunnelConfiguration
    /// Our identity for handshakes.
    public internal(set) var identity: HandshakeIdentity
    /// Frames to send: handshake messages, cookie replies, keepalives, flushed staged packets.
    public let outbox: FrameQueue
    /// The seals and opens a multi-threaded owner runs itself (``encapsulate(_:now:deferSeal:)``,
    /// ``beginDecapsulate(_:from:now:)``); made on first use.
    public private(set) lazy var crypto = CryptoBatch()
    /// Every peer's next deadline (``nextDeadline`` without a walk over all peers).
    let deadlineBook = DeadlineBook()

    /// By peer number. A removed peer leaves a hole that the next added peer fills, so the
    /// numbers in the index table, the routes and jobs in flight stay valid.
    var peers: [Peer?]
    var peersByKey: [Bytes32: Int]
    /// Holes in ``peers``.
    var freePeerNumbers: [UInt32] = []
    /// tap mode's one peer (nil until it is configured).
    var tapPeer: Peer?
    /// The latest initiation ticket handed out; tickets are unique in the tunnel, so an outcome
    /// can never apply to another peer that took a removed one's number.
    var lastTicket: UInt64 = 0
    /// Counts private-key changes (jobs made before one are thrown away).
    var identityGeneration: UInt64 = 0
    var routes = AllowedIPs() {
        didSet {
            outboundRoute.reset()
            inboundRoute.reset()
        }
    }
    /// The last destination routed (tun → network) and the last source checked (network → tun).
    var outboundRoute = RouteMemo()
    var inboundRoute = RouteMemo()
    /// Our local index → peer number.
    var indexTable: IndexTable
    var entropy: any EntropySource
    /// Timer jitter (the 0–333 ms added to handshake retries and the new-handshake timer), seeded
    /// once from `entropy`. Jitter only keeps peers from firing in lockstep and protects nothing,
    /// so it needs no cryptographic generator, and the data path must not pay a `getrandom` per
    /// packet for it (wireguard-go and the Linux driver use fast generators here too). Keys,
    /// ephemerals and indexes still come from `entropy`.
    var jitter: SplitMix64
    var timestamps: any TimestampSource
    /// mac1, mac2 and cookies, the rate limit, and whether we are under load.
    var admission: HandshakeGate
    /// Drops no peer can be blamed for (each peer counts its own).
    var unattributedDrops = DropCounters()
    /// The last few static keys that sent initiations and are no peer of ours.
    var unknownInitiators = UnknownInitiators()
    var events: [TunnelEvent] = []
    let slotSize: Int
    /// Staging queues no peer holds, for the next one that must wait for a handshake.
    var spareStagingQueues: [FrameQueue] = []
    /// The MTU the buffers were sized for at start: a reload may lower the MTU and raise it again
    /// up to this, not beyond.
    public let bufferMTU: Int
    /// Where the handshakes' Diffie-Hellman work runs.
    let handshakeExecution: HandshakeExecution
    /// The processor of the inline mode (nil in the deferred mode: the owner's thread has one).
    var processor: HandshakeProcessor?
    /// Deferred jobs made and not yet taken by ``takeHandshakeJobs()``.
    var handshakeJobs: [HandshakeJob] = []
    /// Deferred jobs made whose outcome has not come back yet (waiting here, taken, or being
    /// computed): the one count of handshake work in flight.
    public internal(set) var handshakesInFlight = 0

    /// Builds the core for `configuration`.
    ///
    /// - Parameter handshakes: `.inline` computes handshakes at once on the caller's thread;
    ///   `.deferred` leaves them for the owner to take (``takeHandshakeJobs()``) to its handshake
    ///   thread, whose outcomes come back through ``completeHandshake(_:now:)``.
    public init(
        configuration: TunnelConfiguration, entropy: any EntropySource, timestamps: any TimestampSource,
        outboxCapacity: Int = 256, handshakes: HandshakeExecution = .inline
    ) {
        self.configuration = configuration
        bufferMTU = configuration.mtu
        identity = HandshakeIdentity(privateKey: configuration.privateKey, mode: configuration.mode, cipher: configuration.cipher)
        handshakeExecution = handshakes
        var seedSource = entropy
        jitter = SplitMix64(seed: seedSource.nextUInt64())
        self.entropy = seedSource
        self.timestamps = timestamps
        // A tap frame or IP packet with room to seal it in place for either transport.
        slotSize = PacketSlab.slotSize(
            payload: configuration.mtu + 14, headroom: TransportData.headroom, tailroom: TransportData.tailroom)
        outbox = FrameQueue(capacity: outboxCapacity, slotSize: slotSize, headroom: TransportData.headroom)
        peers = []
        peersByKey = [:]
        indexTable = IndexTable(expectedPeers: configuration.peers.count)
        admission = HandshakeGate(identity: identity)
        for (i, peerConfiguration) in configuration.peers.enumerated() {
            let peer = Peer(
                number: UInt32(i), configuration: peerConfiguration, timers: configuration.peerTimers, mtu: configuration.mtu,
                carrierSettings: configuration.carrierSettings(for: peerConfiguration), book: deadlineBook)
            peers.append(peer)
            peersByKey[peerConfiguration.publicKey] = i
            for prefix in peerConfiguration.allowedIPs { routes.insert(prefix, peer: UInt32(i)) }
        }
        if configuration.mode == .tap { tapPeer = peers.first ?? nil }
        if case .inline = handshakes { processor = makeHandshakeProcessor() }
    }

    /// The earliest instant at which ``tick(now:)`` has work, or nil. Recomputes only the peers
    /// whose timers changed since the last call (``DeadlineBook``).
    public var nextDeadline: Instant? {
        updateDeadlines()
        let earliest = deadlineBook.earliest
        assert(bookMatchesWalk(), "DeadlineBook: a peer's recorded deadline is not its own")
        assert(earliest == walkedDeadline, "DeadlineBook: \(String(describing: earliest)) is not the walked \(String(describing: walkedDeadline))")
        return earliest
    }

    /// Debug check: every peer's entry in the book is its deadline now (not only the earliest).
    func bookMatchesWalk() -> Bool {
        for (index, value) in deadlineBook.deadlines.enumerated() {
            let expected = index < peers.count ? peers[index]?.nextDeadline?.nanoseconds ?? .max : .max
            if value != expected { return false }
        }
        return true
    }

    /// Brings the dirty peers' deadlines up to date in the book.
    func updateDeadlines() {
        guard !deadlineBook.dirty.isEmpty else { return }
        for number in deadlineBook.dirty {
            guard Int(number) < peers.count, let peer = peers[Int(number)] else { continue }
            peer.inDirtyList = false
            deadlineBook.set(number, peer.nextDeadline)
        }
        deadlineBook.dirty.removeAll(keepingCapacity: true)
    }

    /// Every peer's deadline the slow way: what the book must agree with (debug builds check).
    var walkedDeadline: Instant? {
        var earliest: Instant? = nil
        for case let peer? in peers {
            if let d = peer.nextDeadline, earliest.map({ d < $0 }) ?? true { earliest = d }
        }
        return earliest
    }

    /// Pops the oldest event (for the log, and the endpoints the daemon remembers).
    public func nextEvent() -> TunnelEvent? {
        events.isEmpty ? nil : events.removeFirst()
    }

    /// Queues `event` for the owner (at most 256 wait; the rest are lost, never the traffic).
    func emit(_ event: TunnelEvent) {
        if events.count < 256 { events.append(event) }
    }

    /// Roaming: the peer's endpoint follows the source of its latest authenticated message.
    @inline(__always)
    func updateEndpoint(_ peer: Peer, _ source: Endpoint, now: Instant) {
        guard peer.endpoint != source else { return }
        var source = source
        if source.carrier == .udp { peer.lastUDPEndpoint = source }
        if let selector = peer.selector {
            // This end chooses the carrier (Transport = auto): the peer's address is followed, the
            // carrier it happened to use is not.
            if let current = peer.endpoint, current.sameAddress(as: source) { return }
            source.carrier = selector.carrier
        }
        let previous = peer.endpoint
        peer.endpoint = source
        if previous != nil && peer.proberStarted {
            peer.prober.begin(now: now)  // a new path: search it
            serviceProber(peer, now: now)
        }
        emit(.endpointChanged(peer: peer.configuration.publicKey, previous: previous, endpoint: source))
    }

    /// Counts a drop that the data plane saw outside the core (a device write that failed).
    public func countDrop(_ reason: DropReason) {
        unattributedDrops.count(reason)
    }

    // MARK: - Outgoing: tun → network

    /// Seals the inner packet in `packet` for its peer, or stages it until a session exists.
    ///
    /// `packet` needs ``TransportData/headroom`` in front and ``TransportData/tailroom`` behind.
    ///
    /// With `deferSeal`, a `.send` packet is laid out but not yet encrypted: its seal waits in
    /// ``crypto`` (while there is room; else it is sealed here), and the owner must run the batch
    /// before it sends the packet. Staged packets, ICMP replies and the outbox never wait.
    public func encapsulate(_ packet: inout PacketBuffer, now: Instant, deferSeal: Bool = false) -> EncapsulateResult {
        guard packet.count <= configuration.mtu + (configuration.mode == .tap ? 14 : 0) else {
            return drop(.packetTooBig, peer: nil)
        }
        let peer: Peer
        switch configuration.mode {
        case .tun:
            guard let destination = InnerPacket.destination(of: UnsafeRawBufferPointer(packet.bytes)),
                let number = outboundRoute.lookup(destination, in: routes), let routed = peers[Int(number)]
            else { return drop(.noRoute, peer: nil) }
            peer = routed
        case .tap:
            guard let only = tapPeer else { return drop(.noRoute, peer: nil) }
            peer = only
        }
        guard let destination = peer.endpoint else { return drop(.noEndpoint, peer: peer) }
        let pathMTU = peer.prober.mtu
        let link = configuration.mode == .tap ? 14 : 0
        if packet.count > pathMTU + link {
            return tooBig(&packet, for: peer, pathMTU: pathMTU, now: now)
        }
        if configuration.mssClamp != .off, MSSClamp.isTCPSYN(UnsafeRawBufferPointer(packet.bytes), linkHeaderLength: link) {
            clampMSS(packet.bytes, pathMTU: pathMTU, linkHeaderLength: link)
        }
        if configuration.pathMTUDiscovery && packet.count > PathMTUProber.conservativeMTU + link {
            peer.largeSentUnanswered = true
        }

        if let rekey = peer.sealWithCurrentKey(
            &packet, padding: configuration.pads, mtu: pathMTU, now: now, jitter: &jitter,
            deferTo: deferSeal ? crypto : nil)
        {
            if rekey { startHandshake(peer, now: now) }
            return .send(destination)
        }

        // No usable session: keep the packet for when one exists, and make one.
        let source = UnsafeRawBufferPointer(packet.bytes)
        let staged = stagingQueue(for: peer)
        if staged.isFull {
            // Newest wins, as wireguard-go drops the oldest staged packet.
            staged.dequeue { _ in }
            peer.count(.queueFull)
        }
        staged.enqueue(destination: destination, peer: peer.number) { buffer in
            buffer.append(contentsOf: source)
            return true
        }
        startHandshake(peer, now: now)
        return .staged
    }

    // MARK: - Incoming: network → tun

    /// Handles one message received from `source`.
    public func decapsulate(_ datagram: inout PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        switch Wire.classify(UnsafeRawBufferPointer(datagram.bytes)) {
        case .data(let receiverIndex, _):
            return receiveData(&datagram, receiverIndex: receiverIndex, from: source, now: now)
        case .probe(let receiverIndex, _):
            return receiveProbe(&datagram, receiverIndex: receiverIndex, from: source, now: now)
        case .initiation:
            return receiveInitiation(datagram, from: source, now: now)
        case .response:
            return receiveResponse(datagram, from: source, now: now)
        case .cookieReply:
            return receiveCookieReply(datagram, now: now)
        case .invalid(let reason):
            return .drop(countUnattributed(reason))
        }
    }

    private func receiveData(
        _ datagram: inout PacketBuffer, receiverIndex: UInt32, from source: Endpoint, now: Instant
    ) -> DecapsulateResult {
        guard let number = indexTable[receiverIndex], let peer = peers[Int(number)] else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        guard let slot = peer.slots.slot(forLocalIndex: receiverIndex) else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        // In place: the keypair (with its 1 KiB replay window) is never copied per packet.
        var created = Instant.zero
        var isInitiator = false
        let result = peer.slots.withKeypair(slot) { keypair -> TransportData.OpenResult in
            created = keypair.created
            isInitiator = keypair.isInitiator
            guard peer.timers.keyUsableForReceiving(keyCreated: keypair.created, now: now) else {
                return .drop(.keyExpired)
            }
            return TransportData.open(&datagram, key: keypair.receiveKey, replay: &keypair.replay)
        }
        if case .drop(let reason) = result { return drop(reason, peer: peer) }
        return receivedAuthenticated(
            &datagram, peer: peer, slot: slot, created: created, isInitiator: isInitiator, from: source, now: now)
    }

    // MARK: - Incoming with the opens deferred (a multi-threaded owner)

    /// ``decapsulate(_:from:now:)``, except that a data message that passes every check before
    /// its tag is left to open in ``crypto``: then nil is returned, the job's number is
    /// `crypto.count - 1`, and the owner, once it ran the batch, calls
    /// ``finishDecapsulate(job:_:from:now:)`` with the same buffer (kept in place) and source,
    /// for its jobs in the order they were made. Any other message (or a full batch) is handled
    /// at once, as ``decapsulate(_:from:now:)`` handles it.
    public func beginDecapsulate(_ datagram: inout PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult? {
        guard case .data(let receiverIndex, _) = Wire.classify(UnsafeRawBufferPointer(datagram.bytes)), crypto.hasRoom else {
            return decapsulate(&datagram, from: source, now: now)
        }
        guard let number = indexTable[receiverIndex], let peer = peers[Int(number)] else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        guard let slot = peer.slots.slot(forLocalIndex: receiverIndex) else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        let buffer = datagram
        let check = peer.slots.withKeypair(slot) { keypair -> (TransportData.OpenCheck, TransportKey) in
            guard peer.timers.keyUsableForReceiving(keyCreated: keypair.created, now: now) else {
                return (.drop(.keyExpired), keypair.receiveKey)
            }
            return (TransportData.checkOpen(buffer, key: keypair.receiveKey, replay: &keypair.replay), keypair.receiveKey)
        }
        switch check.0 {
        case .drop(let reason):
            return drop(reason, peer: peer)
        case .ready(let counter, let bodyCount):
            let (body, tag) = TransportData.bodyAndTag(of: datagram, bodyCount: bodyCount)
            _ = crypto.appendOpen(
                body: body, tag: tag, counter: counter, key: check.1, peer: peer.number, localIndex: receiverIndex)
            return nil
        }
    }

    /// Finishes the open of job `job` (made by ``beginDecapsulate(_:from:now:)`` for `datagram`
    /// from `source`) after the owner ran ``crypto``: the replay window, then everything
    /// ``decapsulate(_:from:now:)`` does with an authenticated message.
    public func finishDecapsulate(job index: Int, _ datagram: inout PacketBuffer, from source: Endpoint, now: Instant) -> DecapsulateResult {
        let job = crypto.job(index)
        // The keypair is looked up again: a job earlier in the batch may have moved it to
        // another slot (a confirmed next session) or, with inline handshakes, retired it.
        guard let peer = peers[Int(job.peer)], let slot = peer.slots.slot(forLocalIndex: job.localIndex),
            peer.slots.withKeypair(slot, { $0.receiveKey.secret === job.key.secret })
        else { return .drop(countUnattributed(.unknownReceiverIndex)) }
        guard job.opened else { return drop(.authenticationFailed, peer: peer) }
        var created = Instant.zero
        var isInitiator = false
        let result = peer.slots.withKeypair(slot) { keypair -> TransportData.OpenResult in
            created = keypair.created
            isInitiator = keypair.isInitiator
            return TransportData.finishOpen(&datagram, counter: job.counter, bodyCount: job.body.count, replay: &keypair.replay)
        }
        if case .drop(let reason) = result { return drop(reason, peer: peer) }
        return receivedAuthenticated(
            &datagram, peer: peer, slot: slot, created: created, isInitiator: isInitiator, from: source, now: now)
    }

    /// What follows an authenticated data message (a keepalive included), whose plaintext is
    /// now in `datagram`.
    @inline(__always)
    private func receivedAuthenticated(
        _ datagram: inout PacketBuffer, peer: Peer, slot: KeypairSlots.Slot, created: Instant, isInitiator: Bool,
        from source: Endpoint, now: Instant
    ) -> DecapsulateResult {
        // Authenticated: follow the peer's address (roaming), confirm a responder session.
        updateEndpoint(peer, source, now: now)
        peer.lastAuthenticatedAt = now
        if peer.selector != nil { peer.selector!.received(over: source.carrier, now: now) }
        if slot == .next { confirmSession(peer, now: now) }
        peer.largeSentUnanswered = false
        peer.timers.anyAuthenticatedPacketReceived(now: now)
        peer.timers.anyAuthenticatedPacketTraversal(now: now)
        if isInitiator,
            slot == .current,
            peer.timers.shouldRekeyOnReceive(keyCreated: created, isInitiator: true, now: now)
        {
            startHandshake(peer, now: now)
        }
        if datagram.count == 0 {
            peer.receivedPackets &+= 1  // a keepalive: counted, not delivered
            return .consumed
        }
        peer.timers.dataReceived(now: now)
        let inner = UnsafeRawBufferPointer(datagram.bytes)
        if configuration.mode == .tun {
            guard let length = InnerPacket.length(of: inner) else { return drop(.malformedInnerPacket, peer: peer) }
            guard let sourceAddress = InnerPacket.source(of: inner), inboundRoute.lookup(sourceAddress, in: routes) == peer.number
            else { return drop(.sourceNotAllowed, peer: peer) }
            datagram.truncate(to: length)
        }
        let link = configuration.mode == .tap ? 14 : 0
        if configuration.mssClamp != .off, MSSClamp.isTCPSYN(UnsafeRawBufferPointer(datagram.bytes), linkHeaderLength: link) {
            clampMSS(datagram.bytes, pathMTU: peer.prober.mtu, linkHeaderLength: link)
        }
        peer.receivedPackets &+= 1
        peer.receivedBytes &+= UInt64(datagram.count)
        return .deliver
    }

    @inline(__always)
    func drop(_ reason: DropReason, peer: Peer?) -> EncapsulateResult {
        if let peer { peer.count(reason) } else { unattributedDrops.count(reason) }
        return .drop(reason)
    }

    @inline(__always)
    func drop(_ reason: DropReason, peer: Peer) -> DecapsulateResult {
        peer.count(reason)
        return .drop(reason)
    }

    @inline(__always)
    func countUnattributed(_ reason: DropReason) -> DropReason {
        unattributedDrops.count(reason)
        return reason
    }
}

@available(*, unavailable)
extension Tunnel: Sendable {}
