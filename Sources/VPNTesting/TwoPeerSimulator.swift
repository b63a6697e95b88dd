// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNCrypto

/// Which of the simulator's two peers.
public enum SimulatedSide: Sendable, Hashable, CustomStringConvertible {
    /// The server: listens, knows no endpoint for B unless ``TwoPeerOptions/aKnowsBEndpoint``.
    case a
    /// The client: knows A's endpoint and dials it.
    case b

    /// The other side.
    public var other: SimulatedSide { self == .a ? .b : .a }

    public var description: String { self == .a ? "A" : "B" }
}

/// How to build a ``TwoPeerSimulator``.
public struct TwoPeerOptions: Sendable {
    /// Seeds the keys, the tunnels' entropy and the network.
    public var seed: UInt64 = 1
    /// A's mode; B uses ``bMode`` when set, else the same.
    public var mode: HandshakeIdentity.Mode = .tun
    /// B's mode when it differs from A's (a misconfigured pair).
    public var bMode: HandshakeIdentity.Mode? = nil
    /// A's transport cipher (WireGuard's ChaCha20-Poly1305 by default).
    public var cipher: TransportCipher = .chaCha20Poly1305
    /// B's cipher when it differs from A's (a mismatch test); nil: the same as A's.
    public var bCipher: TransportCipher? = nil
    /// The tunnel MTU of both sides.
    public var mtu = 1420
    /// Timer limits of both sides.
    public var timers = TimerSettings.wireGuard
    /// Packets staged per peer while waiting for a handshake.
    public var stagedPacketsPerPeer = 128
    /// A is configured with B as its peer (false: A starts with none, until a `set` adds B).
    public var aKnowsB = true
    /// The symmetric variant: A also knows B's endpoint, so either side may initiate.
    public var aKnowsBEndpoint = false
    /// The pre-shared key A holds for B (32 bytes), or nil.
    public var presharedKeyAtA: [UInt8]? = nil
    /// The pre-shared key B holds for A, or nil.
    public var presharedKeyAtB: [UInt8]? = nil
    /// B is configured with a wrong public key for A (a key nobody holds).
    public var bHasWrongPublicKeyForA = false
    /// PersistentKeepalive of B for A (zero: off).
    public var persistentKeepaliveAtB: Duration = .zero
    /// Inner addresses: A is 10.0.0.1, B is 10.0.0.2 (tun mode).
    public var addressA = IPAddress(ipv4: 10, 0, 0, 1)
    public var addressB = IPAddress(ipv4: 10, 0, 0, 2)
    /// AllowedIPs that A has for B, and B for A.
    public var allowedAtA: [IPPrefix] = [IPPrefix(host: IPAddress(ipv4: 10, 0, 0, 2))]
    public var allowedAtB: [IPPrefix] = [IPPrefix(host: IPAddress(ipv4: 10, 0, 0, 1))]
    /// The network's behaviour.
    public var impairment = Impairment.none
    /// Outbox slots per tunnel.
    public var outboxCapacity = 256
    /// Path MTU discovery (probes) on both sides, as the daemon has it over UDP.
    public var pathMTUDiscovery = false
    /// `MSSClamp` on both sides.
    public var mssClamp = MSSClampSetting.auto
    /// Where A's and B's handshakes run. Deferred jobs wait in the tunnel until the test takes
    /// them (``TwoPeerSimulator/handshakeJobs(_:)``, ``TwoPeerSimulator/computeHandshakes(_:)``,
    /// ``TwoPeerSimulator/complete(_:_:)``), as the daemon's handshake thread would.
    public var handshakesAtA = HandshakeExecution.inline
    public var handshakesAtB = HandshakeExecution.inline
    /// What carries A's and B's messages (`Transport`): B dials A, so `.agile` belongs at B.
    public var carriersAtA = CarrierUse.one
    public var carriersAtB = CarrierUse.one

    public init() {}
}

/// One side of a ``TwoPeerSimulator``: its tunnel, its UDP endpoint and what reached it.
public final class SimulatedPeer {
    /// Which side this is.
    public let side: SimulatedSide
    /// The protocol core under test.
    public let tunnel: Tunnel
    /// Our UDP endpoint; change it to simulate roaming (NAT rebinding).
    public var endpoint: Endpoint
    /// Our inner address (tun mode).
    public let address: IPAddress
    /// Our MAC address (tap mode).
    public let mac: [UInt8]
    /// Inner packets delivered to our device, in order.
    public internal(set) var delivered: [[UInt8]] = []
    /// Decapsulate drops, in order.
    public internal(set) var drops: [DropReason] = []
    /// Messages consumed (handshakes, keepalives).
    public internal(set) var consumedCount = 0
    /// Log events drained from the tunnel.
    public internal(set) var events: [TunnelEvent] = []
    /// Datagrams we put on the network, in order.
    public internal(set) var sent: [[UInt8]] = []
    /// How many times our tunnel drew from its entropy source (a getrandom call in production).
    public var entropyDraws: Int { draws.count }
    let draws: CountedEntropy.Counter
    /// Deferred handshake jobs taken from the tunnel and not yet computed.
    var jobs: [HandshakeJob] = []
    /// What the handshake thread would own (deferred handshakes), made with the tunnel: it learns
    /// later changes only through the reconfiguration jobs.
    var processor: HandshakeProcessor
    var processorEntropy: SeededEntropy

    init(
        side: SimulatedSide, tunnel: Tunnel, draws: CountedEntropy.Counter, endpoint: Endpoint, address: IPAddress,
        mac: [UInt8], seed: UInt64
    ) {
        self.side = side
        self.draws = draws
        self.tunnel = tunnel
        self.endpoint = endpoint
        self.address = address
        self.mac = mac
        processor = tunnel.makeHandshakeProcessor()
        processorEntropy = SeededEntropy(seed: seed)
    }

    /// Returns the datagrams we sent and forgets them.
    public func takeSent() -> [[UInt8]] {
        defer { sent.removeAll() }
        return sent
    }

    /// Returns the delivered packets and forgets them.
    public func takeDelivered() -> [[UInt8]] {
        defer { delivered.removeAll() }
        return delivered
    }

    /// The payloads of the delivered packets (IP payload in tun mode, Ethernet payload's IP
    /// payload in tap mode).
    public var deliveredPayloads: [[UInt8]] {
        delivered.compactMap { packet in
            tunnel.configuration.mode == .tap
                ? TestPackets.ipPayload(of: Array(packet.dropFirst(14))) : TestPackets.ipPayload(of: packet)
        }
    }

    /// The status of our only peer.
    public func peerStatus(_ now: Instant) -> PeerStatus { tunnel.status(now: now).peers[0] }

    /// Whether our only peer has a usable session at `now`.
    public func hasSession(_ now: Instant) -> Bool { peerStatus(now).hasSession }
}

/// Two ``Tunnel``s joined by a ``FakeNetwork`` and driven by a ``ManualClock``: the whole protocol
/// exercised in memory, deterministically, with no sockets and no sleeps.
///
/// A is the server (no endpoint for B unless told), B the client. Inner packets go in with
/// ``send(_:_:)`` (or ``sendData(from:payload:)``); time moves with ``run(until:)`` /
/// ``run(for:)``, which delivers datagrams, fires timers and carries every outbox frame to the
/// network, in instant order. Not thread-safe.
public final class TwoPeerSimulator {
    /// The shared clock.
    public let clock: ManualClock
    /// The wire between the two.
    public let network: FakeNetwork
    /// The server side.
    public let a: SimulatedPeer
    /// The client side.
    public let b: SimulatedPeer
    /// Buffers for encapsulate and decapsulate.
    public let supply: PacketSupply
    /// The options the simulator was built with.
    public let options: TwoPeerOptions
    /// A's static private key, for tests that build their own identity.
    public let privateKeyA: SecretKey
    /// B's static private key.
    public let privateKeyB: SecretKey

    /// A's UDP endpoint.
    public static let endpointA = Endpoint(ipv4: 192, 0, 2, 1, port: 51_820)
    /// B's UDP endpoint.
    public static let endpointB = Endpoint(ipv4: 198, 51, 100, 2, port: 40_000)

    /// Builds both tunnels from `options`; nothing is sent until asked.
    public init(_ options: TwoPeerOptions = TwoPeerOptions()) {
        self.options = options
        var keys = SeededEntropy(seed: options.seed)
        privateKeyA = X25519.generatePrivateKey(using: &keys)
        privateKeyB = X25519.generatePrivateKey(using: &keys)
        let publicA = X25519.publicKey(for: privateKeyA)
        let publicB = X25519.publicKey(for: privateKeyB)
        let wrongA = X25519.publicKey(for: X25519.generatePrivateKey(using: &keys))
        let pskA = options.presharedKeyAtA.flatMap { SecretKey($0) }
        let pskB = options.presharedKeyAtB.flatMap { SecretKey($0) }

        let peerB = PeerConfiguration(
            publicKey: publicB, presharedKey: pskA, allowedIPs: options.allowedAtA,
            endpoint: options.aKnowsBEndpoint ? Self.endpointB : nil)
        let peerA = PeerConfiguration(
            publicKey: options.bHasWrongPublicKeyForA ? wrongA : publicA, presharedKey: pskB,
            allowedIPs: options.allowedAtB, endpoint: Self.endpointA,
            persistentKeepalive: options.persistentKeepaliveAtB)
        var configurationA = TunnelConfiguration(
            mode: options.mode, privateKey: privateKeyA, mtu: options.mtu, peers: options.aKnowsB ? [peerB] : [],
            timers: options.timers,
            stagedPacketsPerPeer: options.stagedPacketsPerPeer, pathMTUDiscovery: options.pathMTUDiscovery,
            mssClamp: options.mssClamp)
        var configurationB = TunnelConfiguration(
            mode: options.bMode ?? options.mode, privateKey: privateKeyB, mtu: options.mtu, peers: [peerA],
            timers: options.timers, stagedPacketsPerPeer: options.stagedPacketsPerPeer,
            pathMTUDiscovery: options.pathMTUDiscovery, mssClamp: options.mssClamp)
        configurationA.carriers = options.carriersAtA
        configurationB.carriers = options.carriersAtB
        configurationA.cipher = options.cipher
        configurationB.cipher = options.bCipher ?? options.cipher
        let entropyA = CountedEntropy(SeededEntropy(seed: options.seed &+ 0xA))
        let entropyB = CountedEntropy(SeededEntropy(seed: options.seed &+ 0xB))
        let tunnelA = Tunnel(
            configuration: configurationA, entropy: entropyA,
            timestamps: SteppingTimestamps(startUnixSeconds: 1_700_000_000), outboxCapacity: options.outboxCapacity,
            handshakes: options.handshakesAtA)
        let tunnelB = Tunnel(
            configuration: configurationB, entropy: entropyB,
            timestamps: SteppingTimestamps(startUnixSeconds: 1_700_000_000), outboxCapacity: options.outboxCapacity,
            handshakes: options.handshakesAtB)
        a = SimulatedPeer(
            side: .a, tunnel: tunnelA, draws: entropyA.counter, endpoint: Self.endpointA, address: options.addressA,
            mac: [0x02, 0, 0, 0, 0, 0x0A], seed: options.seed &+ 0xA1)
        b = SimulatedPeer(
            side: .b, tunnel: tunnelB, draws: entropyB.counter, endpoint: Self.endpointB, address: options.addressB,
            mac: [0x02, 0, 0, 0, 0, 0x0B], seed: options.seed &+ 0xB1)
        clock = ManualClock()
        network = FakeNetwork(seed: options.seed &+ 0x7E7, impairment: options.impairment)
        supply = PacketSupply(mtu: options.mtu, slotCount: 2)
    }

    /// The current simulated instant.
    public var now: Instant { clock.now() }

    /// The peer on `side`.
    public func peer(_ side: SimulatedSide) -> SimulatedPeer { side == .a ? a : b }

    // MARK: - Sending

    /// Encapsulates `packet` (an inner packet, or an Ethernet frame in tap mode) on `side` now;
    /// a sealed message goes onto the network, anything left in the outbox too.
    @discardableResult
    public func send(_ side: SimulatedSide, _ packet: [UInt8]) -> EncapsulateResult {
        let peer = self.peer(side)
        var buffer = supply.buffer(holding: packet, slot: 0)
        let result = peer.tunnel.encapsulate(&buffer, now: now)
        if case .send(let destination) = result {
            peer.sent.append(buffer.byteArray)
            network.send(buffer.byteArray, from: peer.endpoint, to: destination, now: now)
        }
        pump()
        return result
    }

    /// The packet `side` would send to the other side with `payload`: an IPv4 packet from its
    /// address to the other's (wrapped in an Ethernet frame in tap mode).
    public func dataPacket(from side: SimulatedSide, payload: [UInt8], identification: UInt16 = 0) -> [UInt8] {
        let from = peer(side)
        let to = peer(side.other)
        let ip = TestPackets.ipv4(from: from.address, to: to.address, payload: payload, identification: identification)
        guard from.tunnel.configuration.mode == .tap else { return ip }
        return TestPackets.ethernet(destination: to.mac, source: from.mac, payload: ip)
    }

    /// Sends ``dataPacket(from:payload:identification:)`` from `side`.
    @discardableResult
    public func sendData(from side: SimulatedSide, payload: [UInt8]) -> EncapsulateResult {
        send(side, dataPacket(from: side, payload: payload))
    }

    /// Hands `bytes` straight to `side`'s decapsulate as if received from `source` now, bypassing
    /// the network; records the outcome like a network delivery and pumps the outboxes.
    @discardableResult
    public func receive(_ side: SimulatedSide, _ bytes: [UInt8], from source: Endpoint) -> DecapsulateResult {
        let result = decapsulate(peer(side), bytes, from: source)
        pump()
        return result
    }

    /// Moves every outbox frame of both tunnels onto the network (and drains their events).
    public func pump() {
        for peer in [a, b] {
            while !peer.tunnel.outbox.isEmpty {
                peer.tunnel.outbox.dequeue { frame in
                    peer.sent.append(frame.buffer.byteArray)
                    network.send(frame.buffer.byteArray, from: peer.endpoint, to: frame.destination, now: now)
                }
            }
            while let event = peer.tunnel.nextEvent() { peer.events.append(event) }
        }
    }

    // MARK: - Time

    /// Runs the world until `end`: delivers datagrams and fires timers in instant order, pumping
    /// outboxes after each step, and leaves the clock at `end`.
    public func run(until end: Instant) {
        precondition(end >= now, "TwoPeerSimulator cannot run backwards")
        pump()
        var steps = 0
        while true {
            var next = end
            if let t = network.nextDeliveryTime, t < next { next = t }
            if let t = a.tunnel.nextDeadline, t < next { next = t }
            if let t = b.tunnel.nextDeadline, t < next { next = t }
            if next > now { clock.advance(to: next) }
            var worked = false
            for datagram in network.takeDue(now: now) {
                worked = true
                guard let target = [a, b].first(where: { $0.endpoint == datagram.destination }) else {
                    network.undeliverableCount += 1
                    continue
                }
                decapsulate(target, datagram.bytes, from: datagram.source)
                pump()
            }
            for peer in [a, b] {
                if let deadline = peer.tunnel.nextDeadline, deadline <= now {
                    peer.tunnel.tick(now: now)
                    worked = true
                }
            }
            pump()
            if !worked && now >= end { return }
            steps += 1
            precondition(steps < 10_000_000, "TwoPeerSimulator: no progress (a timer that never clears?)")
        }
    }

    /// Runs the world for `duration` from now.
    public func run(for duration: Duration) { run(until: now + duration) }

    /// B starts its handshake with A (``Tunnel/initiateHandshakes(now:)``) and the world runs for
    /// `duration`.
    public func connect(within duration: Duration = .seconds(1)) {
        b.tunnel.initiateHandshakes(now: now)
        pump()
        run(for: duration)
    }

    // MARK: - Deferred handshakes

    /// `side`'s deferred handshake jobs not yet computed (taken from its tunnel as the daemon
    /// takes them; a taken job stays in flight until its outcome is applied).
    public func handshakeJobs(_ side: SimulatedSide) -> [HandshakeJob] {
        let peer = self.peer(side)
        peer.jobs += peer.tunnel.takeHandshakeJobs()
        return peer.jobs
    }

    /// Computes `side`'s queued jobs with its processor; returns the outcomes, not yet applied.
    public func computeHandshakes(_ side: SimulatedSide) -> [HandshakeOutcome] {
        let peer = self.peer(side)
        let jobs = handshakeJobs(side)
        peer.jobs.removeAll()
        return jobs.map { peer.processor.process($0, entropy: &peer.processorEntropy) }
    }

    /// Applies `outcome` to `side`'s tunnel now and pumps the outboxes.
    public func complete(_ side: SimulatedSide, _ outcome: HandshakeOutcome) {
        peer(side).tunnel.completeHandshake(outcome, now: now)
        pump()
    }

    /// Computes and applies every queued job of `side`, in order.
    public func completeHandshakes(_ side: SimulatedSide) {
        for outcome in computeHandshakes(side) { complete(side, outcome) }
    }

    @discardableResult
    private func decapsulate(_ peer: SimulatedPeer, _ bytes: [UInt8], from source: Endpoint) -> DecapsulateResult {
        var buffer = supply.buffer(holding: bytes, slot: 1, headroom: 0)
        let result = peer.tunnel.decapsulate(&buffer, from: source, now: now)
        switch result {
        case .deliver: peer.delivered.append(buffer.byteArray)
        case .consumed: peer.consumedCount += 1
        case .drop(let reason): peer.drops.append(reason)
        }
        return result
    }
}

/// A seeded entropy source that counts its draws.
struct CountedEntropy: EntropySource {
    final class Counter { var count = 0 }
    var inner: SeededEntropy
    let counter = Counter()

    init(_ inner: SeededEntropy) { self.inner = inner }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        counter.count += 1
        inner.fill(buffer)
    }
}

@available(*, unavailable)
extension TwoPeerSimulator: Sendable {}

@available(*, unavailable)
extension SimulatedPeer: Sendable {}
