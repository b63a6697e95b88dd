// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// How the data plane reaches its peers: UDP datagrams, or TCP streams whose messages carry a
/// 2-byte length prefix. Peers are always named by an ``Endpoint``; for TCP that is the
/// connection's remote address, so the core needs to know nothing of streams.
///
/// Not thread-safe; owned by the data-plane thread.
public protocol Transport: AnyObject {
    /// Headroom the transport needs in front of a sealed message (16 for UDP, 18 for TCP).
    var headroom: Int { get }
    /// When ``tick(now:tunnel:)`` must run next (a redial), or nil.
    var nextDeadline: Instant? { get }
    /// The local port listened on, if any (for `vpnd show`).
    var localPort: UInt16? { get }
    /// Registers the transport's handles with `poller`, with tokens from `tokenBase` up.
    func register(with poller: any Poller, tokenBase: UInt64) throws(IOError)
    /// Handles readiness on one of the transport's handles, handing each received message to
    /// `deliver`, which returns true when the message authenticated (a transport-data message,
    /// keepalives included, that the tunnel accepted): the TCP server admits connections by it.
    /// A delivered buffer stays valid until `endOfBatch` is called, which the transport does
    /// before it reuses any buffer it delivered.
    func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Bool,
        endOfBatch: () -> Void
    ) throws(IOError)
    /// True when ``sendSegmented(_:segmentSizes:to:)`` sends a run of datagrams in one call.
    var supportsSegmentedSend: Bool { get }
    /// Sends `buffers[i]`, equal-sized messages of `segmentSizes[i]` bytes back to back (the
    /// last may be shorter), to `destinations[i]`.
    func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError)
    /// Sends `buffers[i]` to `destinations[i]`. A message that cannot be sent now is dropped, as a
    /// full NIC queue drops, and counted.
    func send(_ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>) throws(IOError)
    /// Time-driven work (redialling a broken TCP connection, closing unauthenticated
    /// connections past their deadline).
    func tick(now: Instant, tunnel: Tunnel) throws(IOError)
    /// Connection counters for `vpnd show` (TCP only; nil for UDP).
    var tcpStatus: TCPConnectionStatus? { get }
}

extension Transport {
    public var supportsSegmentedSend: Bool { false }
    public var tcpStatus: TCPConnectionStatus? { nil }

    /// Without segmented sends: each run is cut into single messages, sent one batch at a time.
    public func sendSegmented(
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
    private let socket: any DatagramSocket
    private let segmentedSocket: (any SegmentedDatagramSocket)?
    private let segmentSizes: UnsafeMutableBufferPointer<Int>
    private let slab: PacketSlab
    private let buffers: UnsafeMutableBufferPointer<PacketBuffer>
    private let sources: UnsafeMutableBufferPointer<Endpoint>
    private let batchSize: Int
    private var token: UInt64 = 0
    /// Messages the socket refused (would block).
    public private(set) var sendDrops: UInt64 = 0

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
        let batchSize = batch
        buffers = .allocate(capacity: batchSize)
        sources = .allocate(capacity: batchSize)
        for i in 0..<batchSize { (buffers.baseAddress! + i).initialize(to: slab.buffer(i, headroom: 0)) }
        sources.initialize(repeating: .none)
    }

    deinit {
        buffers.deallocate()
        sources.deallocate()
        segmentSizes.deallocate()
    }

    public var supportsSegmentedSend: Bool { segmentedSocket?.udpGSOActive ?? false }

    /// "udp offloads: gso gro" or "udp offloads: none", for the start-up log line.
    public var offloadSummary: String {
        var names: [String] = []
        if segmentedSocket?.udpGSOActive ?? false { names.append("gso") }
        if segmentedSocket?.udpGROActive ?? false { names.append("gro") }
        return "udp offloads: " + (names.isEmpty ? "none" : names.joined(separator: " "))
    }

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
                sendDrops &+= UInt64(buffers.count - offset)
                return
            }
            offset += sent
        }
    }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        token = tokenBase
        try poller.register(socket.pollHandle, token: tokenBase, events: .readable)
    }

    public func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Bool,
        endOfBatch: () -> Void
    ) throws(IOError) {
        guard event.token == token else { return }
        if event.events.contains(.hangup), let reporting = socket as? any PathMTUReportingSocket {
            // Errors queued for what we sent (they keep the socket "ready" until read): learn
            // each peer's path MTU from the "too big" ones.
            _ = reporting.drainErrors { destination, mtu in
                tunnel.pathMTUReported(destination: destination, outerMTU: mtu, now: now)
            }
        }
        // Bounded so that a flood cannot starve the tun side.
        for _ in 0..<8 {
            for i in 0..<batchSize { buffers[i].reset(headroom: 0) }
            let count: Int
            if let segmentedSocket, segmentedSocket.udpGROActive {
                count = try segmentedSocket.receive(into: buffers, sources: sources, segmentSizes: segmentSizes)
                for i in 0..<count {
                    // A coalesced run: cut it into its datagrams, in place.
                    let run = buffers[i].bytes
                    let size = max(segmentSizes[i], 1)
                    var offset = 0
                    while offset < run.count {
                        let length = min(size, run.count - offset)
                        var datagram = PacketBuffer(base: run.baseAddress! + offset, capacity: length, headroom: 0)
                        datagram.didWrite(length)
                        _ = deliver(&datagram, sources[i])
                        offset += length
                    }
                }
            } else {
                count = try socket.receive(into: buffers, sources: sources)
                for i in 0..<count { _ = deliver(&buffers[i], sources[i]) }
            }
            endOfBatch()
            if count < batchSize { return }
        }
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
                sendDrops &+= UInt64(buffers.count - offset)
                return
            }
            offset += sent
        }
    }

    public func tick(now: Instant, tunnel: Tunnel) throws(IOError) {}
}

@available(*, unavailable)
extension UDPTransport: Sendable {}
