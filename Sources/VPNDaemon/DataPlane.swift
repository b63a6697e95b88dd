// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore

// Flow of one data-plane iteration (all on one thread, in this order; no locks on the way):
//
//   poller.wait(until: tunnel.nextDeadline)
//   now = clock.now()
//   tun readable  -> read a batch -> tunnel.encapsulate each -> transport.send(batch)
//                    (with a virtio-net header: split each 64 KiB super-packet into MTU-sized
//                    segments laid out back to back, seal each in place, one UDP GSO send each)
//   net readable  -> transport.receive: a batch (with UDP GRO: runs of datagrams, cut into
//                    views) -> tunnel.decapsulate each in place -> pending writes; at the end of
//                    the batch -> device.write each (with a virtio-net header: TCP segments of a
//                    flow coalesced into super-packets first) -> transport.finishBatch(verdict);
//                    transport events (connected, invalid stream, path MTU) -> the tunnel
//   deadline due  -> tunnel.tick(now)
//   outbox        -> transport.send(handshakes, keepalives, flushed staged packets)
//   wakeup        -> handshake outcomes from the handshake thread (sessions installed, replies
//                    to the outbox); control requests (status snapshot, stop)
//   (the clock read before the next wait also ends this iteration's LoopTiming: one per
//   iteration, none per packet)
//
// Ordering: packets of one direction leave in the order they arrived within and across
// batches; the outbox is flushed after each stage, so a handshake response never waits
// behind a full batch.
//
// One handshake's walk (Daemon → Core → Daemon's handshake thread → Core):
//   transport.receive returns an initiation -> deliver(): tunnel.decapsulate: mac1, cookie, rate
//     limit; returns .consumed and keeps a HandshakeJob -> flushOutbox(): tunnel.takeHandshakeJobs() ->
//     HandshakeWorker.submit -> the handshake thread: HandshakeProcessor.process (X25519, Noise,
//     TAI64N replay) -> outcome ring, wakeup rings -> completeHandshakes():
//     tunnel.completeHandshake(outcome): index, MACs, session installed, response in the outbox
//     -> flushOutbox() sends it. The core stores no closure of ours and logs nothing: its
//     TunnelEvents become log lines in reportEvents().

/// The packet loop: moves packets between the virtual interface and the transport through the
/// sans-IO ``Tunnel``.
///
/// Not thread-safe: one thread calls ``run()`` (or ``runOnce(timeoutCap:)`` in tests); other
/// threads talk to it only through ``DataPlaneControl``.
public final class DataPlane {
    let tunnel: Tunnel
    let device: any PacketDevice
    let transport: any Transport
    private let poller: any Poller
    private let clock: any Clock
    let control: DataPlaneControl
    let logger: Logger
    /// The handshake thread, when the tunnel defers its handshakes there.
    private let handshakes: HandshakeWorker?
    /// Binds a new UDP socket to a port, for `listen_port` (called on this thread); nil: the
    /// transport cannot move.
    public var rebind: ((UInt16) throws(IOError) -> any DatagramSocket)?
    /// The other packet threads (`Threads` > 1): each batch's seals and opens run on them and on
    /// this thread together (the tunnel defers them to its ``Tunnel/crypto``); nil: one thread.
    /// Set before ``run()``.
    public var cryptoPool: CryptoPool?
    /// Which received message each deferred open belongs to (by job number).
    let openingMessages: UnsafeMutablePointer<Int>

    let batchSize: Int
    private let slab: PacketSlab
    private let buffers: UnsafeMutableBufferPointer<PacketBuffer>
    let sendBuffers: UnsafeMutableBufferPointer<PacketBuffer>
    let sendEndpoints: UnsafeMutableBufferPointer<Endpoint>
    private let events: UnsafeMutableBufferPointer<PollEvent>
    let headroom: Int

    let dropLog: RateLimitedLog

    /// Offload state; nil when the device frames carry no virtio-net header.
    let offload: OffloadBuffers?
    /// Delivered packets waiting for the end of the receive batch (views into receive buffers).
    let pendingWrites: UnsafeMutableBufferPointer<PacketBuffer>
    var pendingCount = 0
    /// A send error met while flushing a full outbox inside a receive round (where nothing may
    /// throw); rethrown once the round is over.
    var deferredSendError: IOError?
    /// The `SO_MARK` set on the transport (`fwmark`), 0 for none: the one its sockets were made
    /// with (set it before the data plane starts), then what `set=1` changed it to.
    public internal(set) var firewallMark: UInt32 = 0

    /// Tells the data plane, before it starts, that the transport's sockets were made with `mark`.
    public func startsWithFirewallMark(_ mark: UInt32) { firewallMark = mark }
    /// How long iterations take (their work, not the wait); copied into each snapshot.
    var loopTiming = LoopTiming()
    /// When the running iteration's work began (the clock read after its wait); nil before the first.
    private var workStarted: Instant?

    static let deviceToken: UInt64 = 1
    static let wakeupToken: UInt64 = 2
    /// Tokens from this value up belong to the transport.
    static let transportTokenBase: UInt64 = 16

    /// Builds the loop; registers the device, the transport and the control wakeup with `poller`.
    /// `handshakes` is given exactly when `tunnel` defers its handshakes (`.deferred(capacity:)`,
    /// at most the worker's capacity): the loop carries the tunnel's jobs to that worker, which
    /// rings the control wakeup when outcomes are ready.
    public init(
        tunnel: Tunnel, device: any PacketDevice, transport: any Transport, poller: any Poller,
        clock: any Clock, control: DataPlaneControl, logger: Logger, batchSize: Int = 64,
        offloads: DataPlaneOffloads = DataPlaneOffloads(), handshakes: HandshakeWorker? = nil
    ) throws(IOError) {
        precondition(
            (handshakes != nil) == (tunnel.handshakeCapacity > 0)
                && tunnel.handshakeCapacity <= (handshakes?.capacity ?? 0),
            "DataPlane: a tunnel with deferred handshakes needs a HandshakeWorker of at least its capacity, an inline one none")
        self.tunnel = tunnel
        self.handshakes = handshakes
        self.device = device
        self.transport = transport
        self.poller = poller
        self.clock = clock
        self.control = control
        self.logger = logger
        self.batchSize = batchSize
        headroom = transport.headroom
        // Room for the largest frame either side can hand us: a tap frame or a sealed data message.
        let slotSize = PacketSlab.slotSize(
            payload: tunnel.configuration.mtu + 14, headroom: headroom, tailroom: TransportData.tailroom)
        slab = PacketSlab(slotSize: slotSize, slotCount: batchSize)
        buffers = .allocate(capacity: batchSize)
        sendBuffers = .allocate(capacity: batchSize)
        sendEndpoints = .allocate(capacity: batchSize)
        events = .allocate(capacity: 32)
        for i in 0..<batchSize {
            (buffers.baseAddress! + i).initialize(to: slab.buffer(i, headroom: headroom))
            (sendBuffers.baseAddress! + i).initialize(to: slab.buffer(i, headroom: headroom))
        }
        sendEndpoints.initialize(repeating: .none)
        events.initialize(repeating: PollEvent(token: 0, events: []))
        dropLog = RateLimitedLog(interval: .seconds(10))
        offload = offloads.deviceVirtioHeader
            ? OffloadBuffers(
                mtu: tunnel.configuration.mtu, headroom: headroom, linkHeaderLength: offloads.linkHeaderLength,
                pads: tunnel.configuration.pads) : nil
        openingMessages = .allocate(capacity: Tuning.cryptoBatchCapacity)
        openingMessages.initialize(repeating: 0, count: Tuning.cryptoBatchCapacity)
        pendingWrites = .allocate(capacity: OffloadBuffers.maximumPendingWrites)
        pendingWrites.initialize(repeating: slab.buffer(0, headroom: 0))
        try poller.register(device.pollHandle, token: Self.deviceToken, events: .readable)
        try poller.register(control.wakeup.pollHandle, token: Self.wakeupToken, events: .readable)
        try transport.register(with: poller, tokenBase: Self.transportTokenBase)
    }

    deinit {
        buffers.deallocate()
        sendBuffers.deallocate()
        sendEndpoints.deallocate()
        events.deallocate()
        pendingWrites.deallocate()
        openingMessages.deallocate()
    }

    /// Runs until ``DataPlaneControl/requestStop()``; returns the error that stopped it, if any.
    public func run() -> IOError? {
        // A peer with a known endpoint gets a session before the first packet needs one.
        tunnel.initiateHandshakes(now: clock.now())
        while !control.stopRequested {
            do throws(IOError) {
                try runOnce(timeoutCap: nil)
            } catch {
                if error.errno == 77 && error.subject == device.name {
                    // EBADFD on the tun: the interface was deleted (ip link del, wg-quick down).
                    logger.info("\(device.name) is gone (deleted); the data plane stops")
                } else {
                    logger.error("data plane stopped: \(error)")
                }
                return error
            }
        }
        return nil
    }

    /// One iteration: wait for readiness or the next timer (at most `timeoutCap`), then handle
    /// everything that is ready.
    public func runOnce(timeoutCap: Duration?) throws(IOError) {
        // Jobs made outside an iteration (start-up's initiations) go out before the wait.
        if tunnel.hasHandshakeJobs { submitHandshakeJobs() }
        var now = clock.now()
        // The same clock read ends the previous iteration's work (no extra read per iteration).
        if let started = workStarted { loopTiming.record(from: started, to: now) }
        var timeout: Duration? = nil
        if let deadline = tunnel.nextDeadline {
            timeout = deadline > now ? deadline - now : .zero
        }
        if let deadline = transport.nextDeadline {
            let wait = deadline > now ? deadline - now : .zero
            timeout = timeout.map { min($0, wait) } ?? wait
        }
        if let cap = timeoutCap { timeout = timeout.map { min($0, cap) } ?? cap }
        let ready = try poller.wait(into: events, timeout: timeout)
        now = clock.now()
        workStarted = now
        for i in 0..<ready {
            let event = events[i]
            switch event.token {
            case Self.deviceToken:
                try readDevice(now: now)
            case Self.wakeupToken:
                control.wakeup.drain()
                completeHandshakes(now: now)
                serviceControl(now: now)
            default:
                try receiveFromTransport(event, now: now)
            }
            if let error = deferredSendError {
                deferredSendError = nil
                throw error
            }
            try flushOutbox()
        }
        if let deadline = tunnel.nextDeadline, deadline <= now {
            tunnel.tick(now: now)
        }
        try transport.tick(now: now)
        handleTransportEvents(now: now)
        try flushOutbox()
        reportEvents()
        if control.snapshotRequested || control.reconfigurationRequested {
            serviceControl(now: now)
            try flushOutbox()
        }
    }

    // MARK: - Tun → network

    private func readDevice(now: Instant) throws(IOError) {
        if let offload {
            try readSuperPackets(now: now, offload: offload)
            return
        }
        // Bounded so that a busy tun cannot starve the network side.
        for _ in 0..<8 {
            for i in 0..<batchSize { buffers[i].reset(headroom: headroom) }
            let count = try device.read(into: buffers)
            if count == 0 { return }
            var pending = 0
            let deferSeal = cryptoPool != nil
            for i in 0..<count {
                switch tunnel.encapsulate(&buffers[i], now: now, deferSeal: deferSeal) {
                case .send(let destination):
                    sendBuffers[pending] = buffers[i]
                    sendEndpoints[pending] = destination
                    pending += 1
                case .reply:
                    write(buffers[i], now: now)  // an ICMP error for the packet's sender
                case .staged, .drop:
                    break  // a drop is already counted by the tunnel (per peer where one is known)
                }
            }
            runDeferredSeals()
            if pending > 0 {
                try transport.send(
                    UnsafeBufferPointer(rebasing: sendBuffers[0..<pending]),
                    to: UnsafeBufferPointer(rebasing: sendEndpoints[0..<pending]))
            }
            try flushOutbox()
            if count < batchSize { return }
        }
    }

    /// Seals what the tunnel left in its crypto batch, on the packet threads, before any of it
    /// is sent.
    func runDeferredSeals() {
        guard let cryptoPool, tunnel.crypto.count > 0 else { return }
        cryptoPool.run(tunnel.crypto)
        tunnel.crypto.reset()
    }

    // MARK: - Outbox, events, control

    /// Hands the tunnel's handshake jobs to the handshake thread, then sends the outbox.
    func flushOutbox() throws(IOError) {
        if tunnel.hasHandshakeJobs { submitHandshakeJobs() }
        while !tunnel.outbox.isEmpty {
            var pending = 0
            while pending < batchSize,
                tunnel.outbox.dequeue({ frame in
                    sendBuffers[pending] = frame.buffer
                    sendEndpoints[pending] = frame.destination
                })
            {
                pending += 1
            }
            try transport.send(
                UnsafeBufferPointer(rebasing: sendBuffers[0..<pending]),
                to: UnsafeBufferPointer(rebasing: sendEndpoints[0..<pending]))
        }
    }

    private func reportEvents() {
        while let event = tunnel.nextEvent() {
            switch event {
            case .endpointChanged(let peer, _, let endpoint):
                // A TCP connection's address is no place to reach the peer again.
                if endpoint.carrier == .udp { control.noteEndpoint(peer, endpoint) }
                // A client on TCP whose server moved (a new address): dial the new one.
                if endpoint.carrier == .tcp { transport.useCarrier(.tcp, toward: endpoint) }
            case .carrierChanged(_, let carrier, let endpoint, _):
                transport.useCarrier(carrier, toward: endpoint)
            default:
                break
            }
            let line = event.logLine
            logger.log(level: line.level, "\(line.message)")
        }
    }

    /// Carries the jobs the tunnel made to the handshake thread (Daemon → thread). From the first
    /// job that finds the thread's queue full on, the jobs go back to the tunnel (in order: a
    /// later one must not overtake a reconfiguration), which counts them or keeps them.
    private func submitHandshakeJobs() {
        guard let handshakes else { return }
        var full = false
        for job in tunnel.takeHandshakeJobs() {
            if !full && handshakes.submit(job) { continue }
            full = true
            tunnel.handshakeJobNotTaken(job)
        }
    }

    /// Applies what the handshake thread computed: responses and initiations go to the outbox,
    /// sessions are installed (and their staged packets flushed).
    private func completeHandshakes(now: Instant) {
        guard let handshakes else { return }
        for outcome in handshakes.takeOutcomes() {
            tunnel.completeHandshake(outcome, now: now)
            if tunnel.outbox.isFull { flushOutboxDeferringErrors() }
        }
    }

    private func serviceControl(now: Instant) {
        for (publicKey, endpoint) in control.takeEndpointUpdates() {
            tunnel.setEndpoint(publicKey: publicKey, endpoint: endpoint, now: now)
        }
        if control.reconfigurationRequested, let (ticket, request, dryRun) = control.takeReconfiguration() {
            control.finishReconfiguration(ticket, reconfigure(request, dryRun: dryRun, now: now))
        }
        if control.snapshotRequested {
            var status = tunnel.status(now: now)
            status.tcp = transport.tcpStatus
            control.publish(DataPlaneStatus(
                tunnel: status, transport: transport.counters, firewallMark: firewallMark, listenPort: transport.localPort,
                loop: loopTiming, handshakeBacklog: handshakes?.backlog ?? 0))
            loopTiming.longestNanoseconds = 0
        }
    }
}

extension DataPlane {
    /// Applies a `set=1` request: checked whole first, then the socket's mark (the one kernel
    /// call that can fail), then the tunnel; a refusal at any step changes nothing. The kernel
    /// routes are the control plane's, after this returns.
    func reconfigure(_ request: UAPISetRequest, dryRun: Bool, now: Instant) -> Result<TunnelReconfiguration, UAPIError> {
        do throws(UAPIError) {
            let preview = try tunnel.check(request)
            if dryRun { return .success(preview) }
            // The kernel calls that can fail come first; the tunnel's change cannot fail after check.
            var newSocket: (any DatagramSocket)?
            if let port = request.listenPort, port != 0 || transport.localPort == nil, port != transport.localPort {
                guard let rebind else {
                    throw UAPIError(errno: UAPIError.invalid, "listen_port: this interface cannot move to another port")
                }
                do throws(IOError) {
                    let socket = try rebind(port)
                    try socket.setFirewallMark(request.fwmark ?? firewallMark)
                    newSocket = socket
                } catch {
                    throw UAPIError(error, "listen_port \(port)")
                }
            }
            if let mark = request.fwmark, mark != firewallMark, newSocket == nil {
                do throws(IOError) {
                    try transport.setFirewallMark(mark)
                } catch {
                    throw UAPIError(error, "fwmark")
                }
            }
            if let newSocket {
                do throws(IOError) {
                    try transport.replaceSocket(newSocket, poller: poller)
                } catch {
                    throw UAPIError(error, "listen_port")
                }
                logger.info("now listening on port \(newSocket.localEndpoint.port)")
            }
            if let mark = request.fwmark { firewallMark = mark }
            let result = try tunnel.apply(request, now: now)  // the new peers' initiations go with the next flush
            if let mtu = result.mtu { offload?.mtu = mtu }
            return .success(result)
        } catch {
            return .failure(error)
        }
    }
}

@available(*, unavailable)
extension DataPlane: Sendable {}
