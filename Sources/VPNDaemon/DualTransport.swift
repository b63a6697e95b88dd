// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// `Transport = auto`: UDP and TCP on one port, carrying the same authenticated messages. What
/// comes over TCP is tagged ``Carrier/tcp`` (a connection), what comes over UDP is not (an
/// address), and each message goes out over the carrier its destination names, so the core
/// sees one transport whose endpoints say how to reach them.
///
/// - Server: a UDP socket and a TCP listener on the same port; a peer's endpoint follows its
///   latest authenticated data or keepalive, whichever carrier brought it (the core's roaming).
/// - Client: UDP, and a TCP connection to the server only while the session is on TCP
///   (``useCarrier(_:)``, from the core's ``CarrierSelector``).
///
/// Not thread-safe; owned by the data-plane thread.
public final class DualTransport: Transport {
    private let udp: UDPTransport
    private let tcp: TCPTransportBase & Transport
    private var udpToken: UInt64 = 0
    /// Which part returned the last batch (``finishBatch(_:)`` goes back to it).
    private var lastBatchOverTCP = false

    /// A server: `tcp` listens on the same port as `udp`'s socket.
    public convenience init(udp: UDPTransport, server tcp: TCPServerTransport) {
        self.init(udp: udp, anyTCP: tcp)
    }

    /// A client: `tcp` dials the server once the session moves to TCP.
    public convenience init(udp: UDPTransport, client tcp: TCPClientTransport) {
        tcp.dialing = false
        self.init(udp: udp, anyTCP: tcp)
    }

    private init(udp: UDPTransport, anyTCP tcp: TCPTransportBase & Transport) {
        self.udp = udp
        self.tcp = tcp
        tcp.carrier = .tcp
    }

    public var headroom: Int { max(udp.headroom, tcp.headroom) }

    public var nextDeadline: Instant? {
        switch (udp.nextDeadline, tcp.nextDeadline) {
        case (let a?, let b?): return min(a, b)
        case (let a, let b): return a ?? b
        }
    }

    public var localPort: UInt16? { udp.localPort ?? tcp.localPort }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        udpToken = tokenBase
        try udp.register(with: poller, tokenBase: tokenBase)
        // The TCP part's tokens start above the UDP socket's.
        try tcp.register(with: poller, tokenBase: tokenBase + 1)
    }

    public func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch {
        lastBatchOverTCP = event.token != udpToken
        return lastBatchOverTCP ? try tcp.receive(event, now: now) : try udp.receive(event, now: now)
    }

    public func finishBatch(_ verdict: BatchVerdict) {
        if lastBatchOverTCP { tcp.finishBatch(verdict) } else { udp.finishBatch(verdict) }
    }

    public func nextEvent() -> TransportEvent? { udp.nextEvent() ?? tcp.nextEvent() }

    public var supportsSegmentedSend: Bool { udp.supportsSegmentedSend }

    public func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        try forEachCarrierRun(destinations) { (range, carrier) throws(IOError) in
            let run = UnsafeBufferPointer(rebasing: buffers[range])
            let sizes = UnsafeBufferPointer(rebasing: segmentSizes[range])
            let to = UnsafeBufferPointer(rebasing: destinations[range])
            if carrier == .tcp {
                try tcp.sendSegmented(run, segmentSizes: sizes, to: to)
            } else {
                try udp.sendSegmented(run, segmentSizes: sizes, to: to)
            }
        }
    }

    public func send(_ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>) throws(IOError) {
        try forEachCarrierRun(destinations) { (range, carrier) throws(IOError) in
            let run = UnsafeBufferPointer(rebasing: buffers[range])
            let to = UnsafeBufferPointer(rebasing: destinations[range])
            if carrier == .tcp { try tcp.send(run, to: to) } else { try udp.send(run, to: to) }
        }
    }

    /// Calls `body` for each run of consecutive destinations on one carrier, in order, so each
    /// part gets its messages whole and in the order they came.
    @inline(__always)
    private func forEachCarrierRun(
        _ destinations: UnsafeBufferPointer<Endpoint>, _ body: (Range<Int>, Carrier) throws(IOError) -> Void
    ) throws(IOError) {
        var start = 0
        while start < destinations.count {
            let carrier = destinations[start].carrier
            var end = start + 1
            while end < destinations.count && destinations[end].carrier == carrier { end += 1 }
            try body(start..<end, carrier)
            start = end
        }
    }

    public func tick(now: Instant) throws(IOError) {
        try udp.tick(now: now)
        try tcp.tick(now: now)
    }

    public var counters: TransportCounters { udp.counters + tcp.counters }
    public var tcpStatus: TCPConnectionStatus? { tcp.tcpStatus }

    /// Refused as over TCP: the TCP sockets keep the mark they were made with.
    public func setFirewallMark(_ mark: UInt32) throws(IOError) { try tcp.setFirewallMark(mark) }

    /// Refused: the TCP listener would stay on the old port.
    public func replaceSocket(_ socket: any DatagramSocket, poller: any Poller) throws(IOError) {
        throw IOError(
            operation: "listen_port", subject: "Transport = auto", errno: 95,
            reason: "UDP and TCP share the port and move only together (EOPNOTSUPP)",
            hint: "change ListenPort in the config and restart")
    }

    public func useCarrier(_ carrier: Carrier, toward endpoint: Endpoint) {
        guard let client = tcp as? TCPClientTransport else { return }
        if carrier == .tcp { client.retarget(endpoint.over(.udp)) }
        client.dialing = carrier == .tcp
    }
}

@available(*, unavailable)
extension DualTransport: Sendable {}
