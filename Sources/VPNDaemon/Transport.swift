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
    /// `deliver` (the buffer is valid only during the call).
    func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Void
    ) throws(IOError)
    /// Sends `buffers[i]` to `destinations[i]`. A message that cannot be sent now is dropped, as a
    /// full NIC queue drops, and counted.
    func send(_ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>) throws(IOError)
    /// Time-driven work (redialling a broken TCP connection).
    func tick(now: Instant, tunnel: Tunnel) throws(IOError)
}

/// UDP: one socket, batches both ways.
public final class UDPTransport: Transport {
    private let socket: any DatagramSocket
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
        self.batchSize = batchSize
        slab = PacketSlab(slotSize: maxDatagram + 64, slotCount: batchSize)
        buffers = .allocate(capacity: batchSize)
        sources = .allocate(capacity: batchSize)
        for i in 0..<batchSize { (buffers.baseAddress! + i).initialize(to: slab.buffer(i, headroom: 0)) }
        sources.initialize(repeating: .none)
    }

    deinit {
        buffers.deallocate()
        sources.deallocate()
    }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        token = tokenBase
        try poller.register(socket.pollHandle, token: tokenBase, events: .readable)
    }

    public func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Void
    ) throws(IOError) {
        guard event.token == token else { return }
        // Bounded so that a flood cannot starve the tun side.
        for _ in 0..<8 {
            for i in 0..<batchSize { buffers[i].reset(headroom: 0) }
            let count = try socket.receive(into: buffers, sources: sources)
            for i in 0..<count { deliver(&buffers[i], sources[i]) }
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
