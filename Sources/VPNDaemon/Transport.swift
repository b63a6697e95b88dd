// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// How the data plane reaches its peers: UDP datagrams, or TCP streams whose messages carry a
/// 2-byte length prefix. Peers are always named by an ``Endpoint``; for TCP that is the
/// connection's remote address, so the core needs to know nothing of streams.
///
/// One-way: a transport moves messages and reports what it saw (``receive(_:now:)`` returns
/// messages, ``nextEvent()`` events, ``counters`` its drops); it never sees the tunnel. The data
/// plane decides what each message and event means.
///
/// Not thread-safe; owned by the data-plane thread.
public protocol Transport: AnyObject {
    /// Headroom the transport needs in front of a sealed message (16 for UDP, 18 for TCP).
    var headroom: Int { get }
    /// When ``tick(now:)`` must run next (a redial, an admission deadline), or nil.
    var nextDeadline: Instant? { get }
    /// The local port listened on, if any (for `vpnd show`).
    var localPort: UInt16? { get }
    /// Registers the transport's handles with `poller`, with tokens from `tokenBase` up.
    func register(with poller: any Poller, tokenBase: UInt64) throws(IOError)
    /// Handles readiness on one of the transport's handles and returns one batch of received
    /// messages, valid until the next call. While the batch says ``ReceivedBatch/more``, call
    /// again for the same event (after ``finishBatch(_:)``): reading is cut into batches so that
    /// the caller can write what it decrypted before the buffers are reused.
    func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch
    /// Tells the transport what the messages of the batch just returned turned out to be: the TCP
    /// server admits a connection by an authenticated message, and a stream that carried a
    /// malformed message is closed.
    func finishBatch(_ verdict: BatchVerdict)
    /// The next thing the transport saw that the data plane may act on, or nil.
    func nextEvent() -> TransportEvent?
    /// True when ``sendSegmented(_:segmentSizes:to:)`` sends a run of datagrams in one call.
    var supportsSegmentedSend: Bool { get }
    /// Sends `buffers[i]`, equal-sized messages of `segmentSizes[i]` bytes back to back (the
    /// last may be shorter), to `destinations[i]`.
    func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError)
    /// Sends `buffers[i]` to `destinations[i]`. A message that cannot be sent now is dropped, as a
    /// full NIC queue drops, and counted in ``counters``.
    func send(_ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>) throws(IOError)
    /// Time-driven work (redialling a broken TCP connection, closing unauthenticated
    /// connections past their deadline).
    func tick(now: Instant) throws(IOError)
    /// Every message dropped below the tunnel, by the transport or its socket (for `vpnd show`).
    var counters: TransportCounters { get }
    /// Connection counters for `vpnd show` (TCP only; nil for UDP).
    var tcpStatus: TCPConnectionStatus? { get }
    /// `SO_MARK` on the underlay socket(s) (`fwmark`); 0 clears it.
    func setFirewallMark(_ mark: UInt32) throws(IOError)
    /// Moves to `socket` (bound to another port: `listen_port`): the old one closes once
    /// released, the new one is registered with `poller` under the same token.
    func replaceSocket(_ socket: any DatagramSocket, poller: any Poller) throws(IOError)
    /// The client's session with the peer at `endpoint` is now on `carrier` (`Transport = auto`):
    /// a ``DualTransport`` dials TCP there, or closes the TCP connection once the session is back
    /// on UDP (after a grace period, for what is still in flight).
    func useCarrier(_ carrier: Carrier, toward endpoint: Endpoint)
}

/// One batch of received messages: `messages[i]` came from `sources[i]`. The buffers stay valid
/// until the transport is called again.
public struct ReceivedBatch {
    public let messages: UnsafeMutableBufferPointer<PacketBuffer>
    public let sources: UnsafeBufferPointer<Endpoint>
    /// The readiness has more to read: call ``Transport/receive(_:now:)`` again for it.
    public let more: Bool
    /// The messages came over one stream, where a malformed message is no accident: the rest of
    /// the batch is not delivered and the stream is closed (``BatchVerdict/malformed(_:)``).
    public let stream: Bool

    public init(
        messages: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeBufferPointer<Endpoint>, more: Bool,
        stream: Bool = false
    ) {
        self.messages = messages
        self.sources = sources
        self.more = more
        self.stream = stream
    }

    /// Nothing received, nothing more to read.
    public static var empty: ReceivedBatch { ReceivedBatch(messages: .init(start: nil, count: 0), sources: .init(start: nil, count: 0), more: false) }
}

/// What the data plane made of a batch.
public enum BatchVerdict: Equatable, Sendable {
    /// Nothing in it authenticated.
    case unauthenticated
    /// At least one message authenticated: a transport-data message (a keepalive included) that a
    /// session opened. Handshake messages never count, whatever their outcome.
    case authenticated
    /// A message was malformed, for this reason (already counted by the tunnel).
    case malformed(DropReason)
}

/// Something a transport saw that the data plane may act on.
public enum TransportEvent: Equatable, Sendable {
    /// A dialled connection to this endpoint completed (TCP client): the server may have lost
    /// the sessions with the old connection.
    case connected(Endpoint)
    /// A stream broke its framing (a frame length of 0 or over the maximum), for this reason; the
    /// transport closed that connection only.
    case invalidStream(Endpoint, DropReason)
    /// The path to `destination` carries datagrams of at most `mtu` bytes, IP header included
    /// (UDP: from ICMP or `EMSGSIZE` errors queued on the socket).
    case pathMTU(destination: Endpoint, mtu: Int)
    /// A connection that had delivered an authenticated message closed (TCP): a peer whose
    /// endpoint it was cannot be reached there any more.
    case streamClosed(Endpoint)
}

/// Events waiting for the data plane, at most `capacity` (more are dropped: every kind repeats
/// if it still matters). Allocates only when made.
struct TransportEventQueue {
    private var events: [TransportEvent] = []
    private var head = 0
    private let capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
        events.reserveCapacity(capacity)
    }

    mutating func append(_ event: TransportEvent) {
        if events.count < capacity { events.append(event) }
    }

    mutating func next() -> TransportEvent? {
        guard head < events.count else {
            if head > 0 {
                events.removeAll(keepingCapacity: true)
                head = 0
            }
            return nil
        }
        head += 1
        return events[head - 1]
    }
}

extension Transport {
    public var supportsSegmentedSend: Bool { false }
    public var tcpStatus: TCPConnectionStatus? { nil }
    /// Refused: only a UDP transport moves to another socket.
    public func replaceSocket(_ socket: any DatagramSocket, poller: any Poller) throws(IOError) {
        throw IOError(
            operation: "listen_port", subject: "TCP transport", errno: 95, reason: "not supported over TCP (EOPNOTSUPP)",
            hint: "change ListenPort in the config and restart")
    }

    /// Refused: a TCP transport's sockets get their mark when they are made (`FwMark`, or the full
    /// tunnel's), and it does not change while vpnd runs.
    public func setFirewallMark(_ mark: UInt32) throws(IOError) {
        throw IOError(
            operation: "fwmark", subject: "TCP transport", errno: 95, reason: "not changed live over TCP (EOPNOTSUPP)",
            hint: "set FwMark in the config and restart vpnd")
    }
    public func finishBatch(_ verdict: BatchVerdict) {}
    public func useCarrier(_ carrier: Carrier, toward endpoint: Endpoint) {}

    /// Without segmented sends: each run is cut into single messages (``sendSegmentedAsSingles(_:segmentSizes:to:)``).
    public func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        try sendSegmentedAsSingles(buffers, segmentSizes: segmentSizes, to: destinations)
    }

    /// Cuts each run into its single messages and sends them with ``send(_:to:)``, one at a time.
    public func sendSegmentedAsSingles(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        for i in 0..<buffers.count {
            let run = buffers[i]
            let size = segmentSizes[i]
            var offset = 0
            while offset < run.count {
                let length = min(size, run.count - offset)
                var piece = PacketBuffer(base: run.bytes.baseAddress! + offset, capacity: length, headroom: 0)
                piece.didWrite(length)
                var destination = destinations[i]
                try withUnsafePointer(to: &piece) { (p) throws(IOError) in
                    try withUnsafePointer(to: &destination) { (d) throws(IOError) in
                        try send(UnsafeBufferPointer(start: p, count: 1), to: UnsafeBufferPointer(start: d, count: 1))
                    }
                }
                offset += length
            }
        }
    }
}

/// UDP: one socket, batches both ways; UDP GSO and GRO when the socket has them.
public final class UDPTransport: Transport {
    private var socket: any DatagramSocket
    private var segmentedSocket: (any SegmentedDatagramSocket)?
    private let segmentSizes: UnsafeMutableBufferPointer<Int>
    private let slab: PacketSlab
    private let buffers: UnsafeMutableBufferPointer<PacketBuffer>
    private let sources: UnsafeMutableBufferPointer<Endpoint>
    private let batchSize: Int
    private var token: UInt64 = 0
    /// With GRO: the datagrams cut from the coalesced runs of one receive, as views.
    private let datagrams: UnsafeMutableBufferPointer<PacketBuffer>
    private let datagramSources: UnsafeMutableBufferPointer<Endpoint>
    /// With GRO: runs of the last receive, and where cutting them stopped when `datagrams` filled.
    private var runCount = 0
    private var runIndex = 0
    private var runOffset = 0
    /// Receives made for the current readiness event.
    private var rounds = 0
    private var events = TransportEventQueue()
    /// Messages the socket refused (would block).
    private var socketFull: UInt64 = 0

    /// Receives per readiness event, at most: a flood cannot starve the tun side.
    static let roundsPerEvent = 8

    public let headroom = TransportData.headroom
    public var nextDeadline: Instant? { nil }
    public var localPort: UInt16? { socket.localEndpoint.port }

    /// A transport over `socket`, receiving up to `batchSize` datagrams of up to `maxDatagram` bytes per call.
    public init(socket: any DatagramSocket, maxDatagram: Int, batchSize: Int = 64) {
        self.socket = socket
        let segmented = socket as? any SegmentedDatagramSocket
        segmentedSocket = segmented
        // With GRO a receive may hold 64 KiB of coalesced datagrams: fewer, larger buffers.
        let gro = segmented?.udpGROActive ?? false
        let batch = gro ? 8 : batchSize
        self.batchSize = batch
        segmentSizes = .allocate(capacity: batch)
        segmentSizes.initialize(repeating: 0)
        slab = PacketSlab(slotSize: PacketSlab.slotSize(payload: gro ? 65535 : maxDatagram), slotCount: batch)
        buffers = .allocate(capacity: batch)
        sources = .allocate(capacity: batch)
        for i in 0..<batch { (buffers.baseAddress! + i).initialize(to: slab.buffer(i, headroom: 0)) }
        sources.initialize(repeating: .none)
        // The kernel coalesces at most 64 datagrams per run (UDP_GRO_CNT_MAX).
        let views = gro ? batch * 64 : 0
        datagrams = .allocate(capacity: views)
        datagrams.initialize(repeating: slab.buffer(0, headroom: 0))
        datagramSources = .allocate(capacity: views)
        datagramSources.initialize(repeating: .none)
    }

    deinit {
        buffers.deallocate()
        sources.deallocate()
        segmentSizes.deallocate()
        datagrams.deallocate()
        datagramSources.deallocate()
    }

    public var supportsSegmentedSend: Bool { segmentedSocket?.udpGSOActive ?? false }

    public var counters: TransportCounters { TransportCounters(socketFull: socketFull) + socket.sendCounters }

    public func setFirewallMark(_ mark: UInt32) throws(IOError) { try socket.setFirewallMark(mark) }

    public func replaceSocket(_ socket: any DatagramSocket, poller: any Poller) throws(IOError) {
        let segmented = socket as? any SegmentedDatagramSocket
        // The buffers were sized for GRO on or off: the new socket must match.
        guard (segmented?.udpGROActive ?? false) == (segmentedSocket?.udpGROActive ?? false) else {
            throw IOError(
                operation: "listen_port", subject: socket.localEndpoint.description, errno: 95,
                reason: "the new socket's UDP GRO differs from the old one's", hint: "restart with the new port")
        }
        try poller.register(socket.pollHandle, token: token, events: .readable)
        self.socket = socket
        segmentedSocket = segmented
        runIndex = 0
        runCount = 0
        rounds = 0
    }

    public func nextEvent() -> TransportEvent? { events.next() }

    public func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        guard let segmentedSocket else { return }
        var offset = 0
        while offset < buffers.count {
            let sent = try segmentedSocket.sendSegmented(
                UnsafeBufferPointer(rebasing: buffers[offset...]),
                segmentSizes: UnsafeBufferPointer(rebasing: segmentSizes[offset...]),
                to: UnsafeBufferPointer(rebasing: destinations[offset...]))
            if sent == 0 {
                socketFull &+= UInt64(buffers.count - offset)
                return
            }
            offset += sent
        }
    }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        token = tokenBase
        try poller.register(socket.pollHandle, token: tokenBase, events: .readable)
    }

    public func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch {
        guard event.token == token else { return .empty }
        if runIndex < runCount { return cutRuns() }
        if rounds == 0, event.events.contains(.hangup), let reporting = socket as? any PathMTUReportingSocket {
            // Errors queued for what we sent (they keep the socket "ready" until read): each
            // "too big" one tells a path MTU.
            _ = reporting.drainErrors { destination, mtu in events.append(.pathMTU(destination: destination, mtu: mtu)) }
        }
        rounds += 1
        for i in 0..<batchSize { buffers[i].reset(headroom: 0) }
        if let segmentedSocket, segmentedSocket.udpGROActive {
            runCount = try segmentedSocket.receive(into: buffers, sources: sources, segmentSizes: segmentSizes)
            runIndex = 0
            runOffset = 0
            return cutRuns()
        }
        let count = try socket.receive(into: buffers, sources: sources)
        return ReceivedBatch(
            messages: UnsafeMutableBufferPointer(rebasing: buffers[0..<count]),
            sources: UnsafeBufferPointer(rebasing: sources[0..<count]), more: moreRounds(received: count))
    }

    /// Whether another receive may follow the one that got `received` buffers; resets the round
    /// count when not.
    private func moreRounds(received: Int) -> Bool {
        let more = received == batchSize && rounds < Self.roundsPerEvent
        if !more { rounds = 0 }
        return more
    }

    /// Cuts the coalesced runs of the last receive into their datagrams, in place, as many as
    /// `datagrams` holds.
    private func cutRuns() -> ReceivedBatch {
        var count = 0
        while runIndex < runCount && count < datagrams.count {
            let run = buffers[runIndex].bytes
            let size = max(segmentSizes[runIndex], 1)
            while runOffset < run.count && count < datagrams.count {
                let length = min(size, run.count - runOffset)
                datagrams[count] = PacketBuffer(base: run.baseAddress! + runOffset, capacity: length, headroom: 0)
                datagrams[count].didWrite(length)
                datagramSources[count] = sources[runIndex]
                count += 1
                runOffset += length
            }
            if runOffset >= run.count {
                runIndex += 1
                runOffset = 0
            }
        }
        let more = runIndex < runCount || moreRounds(received: runCount)
        return ReceivedBatch(
            messages: UnsafeMutableBufferPointer(rebasing: datagrams[0..<count]),
            sources: UnsafeBufferPointer(rebasing: datagramSources[0..<count]), more: more)
    }

    public func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        var offset = 0
        while offset < buffers.count {
            let sent = try socket.send(
                UnsafeBufferPointer(rebasing: buffers[offset...]), to: UnsafeBufferPointer(rebasing: destinations[offset...]))
            if sent == 0 {
                // Socket buffer full: drop the rest, as a NIC queue would; TCP inside recovers.
                socketFull &+= UInt64(buffers.count - offset)
                return
            }
            offset += sent
        }
    }

    public func tick(now: Instant) throws(IOError) {}
}

@available(*, unavailable)
extension UDPTransport: Sendable {}
