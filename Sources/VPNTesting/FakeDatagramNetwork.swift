// SPDX-License-Identifier: MIT
import VPNBasics

/// An in-memory UDP network for sockets: a datagram sent by a ``FakeDatagramSocket`` reaches the
/// socket bound at its destination as soon as it is sent, or is counted as undeliverable.
///
/// The impairments are ``FakeNetwork``'s, which carries every datagram here: loss, duplication,
/// and reordering (a datagram held back is overtaken by the next one), drawn from a
/// ``SeededEntropy`` so a run is reproducible. Each send is one step of the network's own clock,
/// so ``Impairment/delay`` and ``Impairment/jitter``, which are times, play no part here: the
/// data planes on top run on their own clocks.
///
/// Not thread-safe; owned by one test thread.
public final class FakeDatagramNetwork {
    /// The impairments (``VPNTesting/Impairment``; its delay and jitter are not used here).
    public typealias Impairment = VPNTesting.Impairment

    /// One datagram as sent.
    public struct Datagram {
        public var bytes: [UInt8]
        public var source: Endpoint
        public var destination: Endpoint
    }

    /// What befalls the datagrams sent from now on.
    public var impairment: Impairment {
        didSet { engine.impairment = Self.stepped(impairment) }
    }
    private let engine: FakeNetwork
    /// The network's clock: one nanosecond per send.
    private var step = Instant.zero
    private var sockets: [Endpoint: WeakSocket] = [:]
    private var nextPort: UInt16 = 49152
    /// Called with every datagram sent, before impairments (a tap for tests).
    public var onTransmit: ((Datagram) -> Void)?

    public private(set) var transmitted = 0
    public private(set) var delivered = 0
    public var lost: Int { engine.lostCount }
    public var duplicated: Int { engine.duplicatedCount }
    public var reordered: Int { engine.reorderedCount }
    /// Datagrams to an endpoint where no socket is bound.
    public private(set) var undeliverable = 0

    public init(seed: UInt64 = 1, impairment: Impairment = .none) {
        self.impairment = impairment
        engine = FakeNetwork(seed: seed, impairment: Self.stepped(impairment), recording: false)
    }

    /// `impairment` on the network's clock of one step per send: no delay, and a held-back
    /// datagram due two steps later, after the next one.
    private static func stepped(_ impairment: Impairment) -> Impairment {
        var stepped = impairment
        stepped.delay = .zero
        stepped.jitter = .zero
        stepped.reorderDelay = .nanoseconds(2)
        return stepped
    }

    func bind(_ socket: FakeDatagramSocket, at endpoint: Endpoint) throws(IOError) {
        if let existing = sockets[endpoint], existing.socket != nil {
            throw IOError(operation: "bind", subject: "\(endpoint)", errno: 98, reason: "address already in use (EADDRINUSE)")
        }
        sockets[endpoint] = WeakSocket(socket: socket)
    }

    func unbind(_ endpoint: Endpoint) { sockets[endpoint] = nil }

    func ephemeralPort() -> UInt16 {
        defer { nextPort = nextPort == .max ? 49152 : nextPort + 1 }
        return nextPort
    }

    /// Sends `bytes` from `source` to `destination` through the impairments (what a socket does,
    /// and what a test does to inject garbage).
    public func transmit(_ bytes: [UInt8], from source: Endpoint, to destination: Endpoint) {
        transmitted += 1
        onTransmit?(Datagram(bytes: bytes, source: source, destination: destination))
        step = step + .nanoseconds(1)
        engine.send(bytes, from: source, to: destination, now: step)
        for datagram in engine.takeDue(now: step) { deliver(datagram) }
    }

    /// Delivers every held-back datagram now.
    public func releaseHeld() {
        guard let last = engine.inFlightLatest else { return }
        for datagram in engine.takeDue(now: last) { deliver(datagram) }
    }

    private func deliver(_ datagram: VPNTesting.Datagram) {
        guard let socket = sockets[datagram.destination]?.socket else {
            undeliverable += 1
            return
        }
        if socket.enqueue(datagram.bytes, from: datagram.source) { delivered += 1 }
    }
}

private struct WeakSocket {
    weak var socket: FakeDatagramSocket?
}

@available(*, unavailable)
extension FakeDatagramNetwork: Sendable {}

/// A UDP socket on a ``FakeDatagramNetwork``. Readable while datagrams wait.
///
/// Not thread-safe; owned by one test thread or data-plane thread.
public final class FakeDatagramSocket: DatagramSocket, FakePollable {
    public let localEndpoint: Endpoint
    public let pollHandle: PollHandle
    private let network: FakeDatagramNetwork
    private var inbox: [(bytes: [UInt8], source: Endpoint)] = []
    /// Datagrams the receive queue holds; more are dropped, as a full socket buffer drops.
    public var receiveQueueLimit = 4096
    /// The most datagrams one ``send(_:to:)`` takes (nil: all); fewer models would-block.
    public var sendLimit: Int?
    /// Datagrams sent through this socket.
    public private(set) var sentCount = 0
    /// Datagrams dropped because the receive queue was full.
    public private(set) var overflowCount = 0

    /// Binds a socket at `endpoint` on `network`; port 0 picks a free port.
    public init(network: FakeDatagramNetwork, endpoint: Endpoint) throws(IOError) {
        var local = endpoint
        if local.port == 0 { local.port = network.ephemeralPort() }
        self.network = network
        localEndpoint = local
        pollHandle = FakeHandleTable.allocate()
        try network.bind(self, at: local)
        FakeHandleTable.attach(self)
    }

    deinit {
        network.unbind(localEndpoint)
        FakeHandleTable.detach(pollHandle)
    }

    func enqueue(_ bytes: [UInt8], from source: Endpoint) -> Bool {
        guard inbox.count < receiveQueueLimit else {
            overflowCount += 1
            return false
        }
        inbox.append((bytes, source))
        return true
    }

    /// Datagrams waiting to be received.
    public var pendingCount: Int { inbox.count }

    public var readiness: PollEvents { inbox.isEmpty ? .writable : [.readable, .writable] }

    public func receive(
        into buffers: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeMutableBufferPointer<Endpoint>
    ) throws(IOError) -> Int {
        let count = min(buffers.count, sources.count, inbox.count)
        for i in 0..<count {
            let (bytes, source) = inbox[i]
            let tail = buffers[i].tail
            let n = min(bytes.count, tail.count)  // a datagram longer than the buffer is cut short
            bytes.withUnsafeBytes { if n > 0 { tail.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) } }
            buffers[i].didWrite(n)
            sources[i] = source
        }
        inbox.removeFirst(count)
        return count
    }

    public func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) -> Int {
        let count = min(buffers.count, destinations.count, sendLimit ?? .max)
        for i in 0..<count {
            network.transmit(Array(UnsafeRawBufferPointer(buffers[i].bytes)), from: localEndpoint, to: destinations[i])
        }
        sentCount += count
        return count
    }
}

@available(*, unavailable)
extension FakeDatagramSocket: Sendable {}
