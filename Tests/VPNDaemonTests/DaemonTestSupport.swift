// SPDX-License-Identifier: MIT
import Foundation
import Logging
import Synchronization
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux
import VPNTesting

// Shared set-up of the daemon tests: two DataPlanes (server and client), each with its own
// Tunnel, clock, poller, wakeup and fake tun, joined by fake or real transports.

/// Inner addresses: the server is 10.8.0.1, the client 10.8.0.2.
let serverInner: (UInt8, UInt8, UInt8, UInt8) = (10, 8, 0, 1)
let clientInner: (UInt8, UInt8, UInt8, UInt8) = (10, 8, 0, 2)
let testMTU = 1420

/// An IPv4 packet (protocol 253, valid header checksum) from `source` to `destination`.
func ipv4Packet(
    from source: (UInt8, UInt8, UInt8, UInt8), to destination: (UInt8, UInt8, UInt8, UInt8), payload: [UInt8]
) -> [UInt8] {
    let total = 20 + payload.count
    var header: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 253, 0, 0,
        source.0, source.1, source.2, source.3, destination.0, destination.1, destination.2, destination.3,
    ]
    var sum: UInt32 = 0
    for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(header[i]) << 8 | UInt32(header[i + 1]) }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    header[10] = UInt8(~UInt16(sum) >> 8)
    header[11] = UInt8(~UInt16(sum) & 0xFF)
    return header + payload
}

/// A payload that says which packet it is.
func numbered(_ n: Int, count: Int = 100) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: n &* 7 &+ $0) }
}

/// Handshake timestamps one second apart, so each initiation is newer than the last.
struct CountingTimestamps: TimestampSource {
    var seconds: Int64 = 1_700_000_000
    mutating func timestamp() -> TAI64N {
        seconds += 1
        return TAI64N(unixSeconds: seconds, nanoseconds: 0)
    }
}

/// Log lines, recorded for assertions.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    func contains(_ text: String) -> Bool { all.contains { $0.contains(text) } }
}

struct RecordingLogHandler: LogHandler {
    let recorder: LogRecorder
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        recorder.append("\(event.level): \(event.message)")
    }
}

/// The two static key pairs, from a seed.
struct TestIdentities {
    let serverKey: SecretKey
    let clientKey: SecretKey
    var serverPublic: Bytes32 { X25519.publicKey(for: serverKey) }
    var clientPublic: Bytes32 { X25519.publicKey(for: clientKey) }

    init(seed: UInt64 = 7) {
        var entropy = SeededEntropy(seed: seed)
        serverKey = X25519.generatePrivateKey(using: &entropy)
        clientKey = X25519.generatePrivateKey(using: &entropy)
    }

    /// tun: the client's AllowedIPs are 10.8.0.2/32; tap: none (the one peer gets every frame).
    func serverConfiguration(mode: HandshakeIdentity.Mode = .tun) -> TunnelConfiguration {
        TunnelConfiguration(
            mode: mode, privateKey: serverKey, mtu: testMTU,
            peers: [PeerConfiguration(publicKey: clientPublic, allowedIPs: mode == .tun ? [IPPrefix("10.8.0.2/32")!] : [])])
    }

    /// tun: the server's AllowedIPs are 10.8.0.0/24; tap: none.
    func clientConfiguration(serverEndpoint: Endpoint, mode: HandshakeIdentity.Mode = .tun) -> TunnelConfiguration {
        TunnelConfiguration(
            mode: mode, privateKey: clientKey, mtu: testMTU,
            peers: [
                PeerConfiguration(
                    publicKey: serverPublic, allowedIPs: mode == .tun ? [IPPrefix("10.8.0.0/24")!] : [],
                    endpoint: serverEndpoint)
            ])
    }
}

/// The largest message either transport carries for `testMTU` (as the composition root computes it).
let maxMessage = TransportData.messageSize(forPacketLength: testMTU + 14, mtu: testMTU + 14)

/// One daemon, built as `vpnd` builds it (``Daemon``), from fakes; driven by hand.
final class Node {
    let name: String
    let daemon: Daemon
    let device: FakePacketDevice
    let transport: any Transport
    let poller: any Poller
    let clock: any Clock
    let log: LogRecorder
    /// The entropy the handshake thread would own (``pump(_:maxRounds:sourceLocation:)`` runs
    /// the handshake jobs between data-plane iterations).
    var workerEntropy: SeededEntropy
    var tunnel: Tunnel { daemon.tunnel }
    var control: DataPlaneControl { daemon.control }
    var dataPlane: DataPlane { daemon.dataPlane }
    var worker: HandshakeWorker? { daemon.worker }

    init(
        name: String, configuration: TunnelConfiguration, entropySeed: UInt64, device: FakePacketDevice,
        transport: any Transport, poller: any Poller, clock: any Clock, wakeup: any Wakeup, log: LogRecorder = LogRecorder(),
        offloads: DataPlaneOffloads = DataPlaneOffloads(), deferredHandshakes: Bool = false, packetThreads: Int = 1
    ) throws {
        self.log = log
        self.name = name
        workerEntropy = SeededEntropy(seed: entropySeed &+ 1)
        self.device = device
        self.transport = transport
        self.poller = poller
        self.clock = clock
        daemon = try Daemon(Daemon.Parts(
            configuration: configuration, device: device, transport: transport, poller: poller, wakeup: wakeup,
            clock: clock, entropy: SeededEntropy(seed: entropySeed), timestamps: CountingTimestamps(),
            logger: makeLogger(log), offloads: offloads,
            handshakeThread: deferredHandshakes ? (poller: FakePoller(clock: ManualClock()), doorbell: FakeWakeup()) : nil,
            packetThreads: try Self.packetThreadParts(packetThreads)))
        // The packet threads are real threads on real eventfds, started here, stopped in deinit.
        if let pool = daemon.cryptoPool, !pool.start(threads: PosixThreads()) {
            throw IOError(operation: "start", subject: "packet threads", errno: 0, reason: "a thread could not start")
        }
    }

    deinit { daemon.cryptoPool?.stop() }

    static func packetThreadParts(
        _ count: Int
    ) throws -> (workers: [(doorbell: any Wakeup, poller: any Poller)], finished: (wakeup: any Wakeup, poller: any Poller))? {
        guard count > 1 else { return nil }
        var workers: [(doorbell: any Wakeup, poller: any Poller)] = []
        for _ in 1..<count { workers.append((doorbell: try EventFDWakeup(), poller: try EpollPoller(capacity: 4))) }
        return (workers, (wakeup: try EventFDWakeup(), poller: try EpollPoller(capacity: 4)))
    }

    /// Runs the handshake worker's queued jobs (what its thread would do); returns how many.
    @discardableResult
    func runHandshakeWorker() -> Int {
        daemon.runHandshakeJobs(entropy: &workerEntropy)
    }

    var fakePoller: FakePoller { poller as! FakePoller }
    var manualClock: ManualClock { clock as! ManualClock }

    /// A fresh status snapshot: requests one and runs one iteration to publish it.
    func snapshot() throws -> DataPlaneStatus? {
        let generation = control.requestSnapshot()
        try dataPlane.runOnce(timeoutCap: .zero)
        return control.snapshot(newerThan: generation)
    }
}

/// A logger that records into `recorder`.
func makeLogger(_ recorder: LogRecorder) -> Logger {
    Logger(label: "vpnd-test") { _ in RecordingLogHandler(recorder: recorder) }
}

/// Builds a fake-backed node: FakePoller on a ManualClock, FakeWakeup, FakePacketDevice.
func fakeNode(
    _ name: String, configuration: TunnelConfiguration, seed: UInt64, transport: any Transport, clock: ManualClock,
    log: LogRecorder = LogRecorder(), offloads: DataPlaneOffloads = DataPlaneOffloads(), deferredHandshakes: Bool = false,
    packetThreads: Int = 1
) throws -> Node {
    try Node(
        name: name, configuration: configuration, entropySeed: seed, device: FakePacketDevice(name: "\(name)0"),
        transport: transport, poller: FakePoller(clock: clock), clock: clock, wakeup: FakeWakeup(), log: log,
        offloads: offloads, deferredHandshakes: deferredHandshakes, packetThreads: packetThreads)
}

/// Runs every node's loop once per round (never waiting, never moving a clock) until two rounds
/// in a row find nothing ready. Returns the rounds taken; fails the test past `maxRounds`.
@discardableResult
func pump(_ nodes: [Node], maxRounds: Int = 500, sourceLocation: SourceLocation = #_sourceLocation) throws -> Int {
    var quietRounds = 0
    for round in 1...maxRounds {
        var busy = false
        for node in nodes {
            try node.dataPlane.runOnce(timeoutCap: .zero)
            if node.fakePoller.lastReadyCount > 0 { busy = true }
            if node.runHandshakeWorker() > 0 { busy = true }
        }
        quietRounds = busy ? 0 : quietRounds + 1
        if quietRounds == 2 { return round }
    }
    Issue.record("nodes still busy after \(maxRounds) rounds", sourceLocation: sourceLocation)
    return maxRounds
}

/// Endpoints of the fake networks.
let serverEndpoint = Endpoint(ipv4: 192, 0, 2, 1, port: 51820)
let clientAddress = Endpoint(ipv4: 192, 0, 2, 2, port: 0)

/// The one two-daemon world of these tests: a server and a client, each a ``Node`` built as vpnd
/// builds it (``Daemon``), over one underlay: a FakeDatagramNetwork (UDP), a FakeStreamNetwork
/// (TCP), or real UDP sockets on loopback with epoll and eventfds (``loopback()``, in
/// TwoBackendTests.swift). Build it with ``udp(seed:impairment:deferredHandshakes:mode:offloads:wrapClientTransport:)``
/// or ``tcp(writeChunk:pipeCapacity:maximumConnections:unauthenticatedDeadline:unauthenticatedPerSource:)``.
final class DaemonPair {
    enum Underlay { case fakeUDP, fakeTCP, loopbackUDP }

    let underlay: Underlay
    let server: Node
    let client: Node
    private let udpParts: (network: FakeDatagramNetwork, server: FakeDatagramSocket, client: FakeDatagramSocket)?
    private let tcpParts: (network: FakeStreamNetwork, listener: FakeStreamListener, dialer: FakeStreamDialer)?
    /// Objects the nodes need alive that nothing else holds (loopback sockets).
    private let keep: [AnyObject]

    init(
        underlay: Underlay, server: Node, client: Node,
        udp: (network: FakeDatagramNetwork, server: FakeDatagramSocket, client: FakeDatagramSocket)? = nil,
        tcp: (network: FakeStreamNetwork, listener: FakeStreamListener, dialer: FakeStreamDialer)? = nil,
        keep: [AnyObject] = []
    ) {
        self.underlay = underlay
        self.server = server
        self.client = client
        udpParts = udp
        tcpParts = tcp
        self.keep = keep
    }

    /// UDP over a FakeDatagramNetwork: a tun pair (10.8.0.1 / 10.8.0.2), or with `mode: .tap` one
    /// peer each and no AllowedIPs. `wrapClientTransport` lets a test watch the client's sends.
    static func udp(
        seed: UInt64 = 1, impairment: FakeDatagramNetwork.Impairment = .none, deferredHandshakes: Bool = false,
        mode: HandshakeIdentity.Mode = .tun, offloads: DataPlaneOffloads = DataPlaneOffloads(),
        wrapClientTransport: (UDPTransport) -> any Transport = { $0 }, packetThreads: Int = 1
    ) throws -> DaemonPair {
        let ids = TestIdentities()
        let network = FakeDatagramNetwork(seed: seed, impairment: impairment)
        let serverSocket = try FakeDatagramSocket(network: network, endpoint: serverEndpoint)
        let clientSocket = try FakeDatagramSocket(network: network, endpoint: clientAddress)
        let server = try fakeNode(
            "server", configuration: ids.serverConfiguration(mode: mode), seed: 100,
            transport: UDPTransport(socket: serverSocket, maxDatagram: maxMessage), clock: ManualClock(),
            offloads: offloads, deferredHandshakes: deferredHandshakes, packetThreads: packetThreads)
        let client = try fakeNode(
            "client", configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint, mode: mode), seed: 200,
            transport: wrapClientTransport(UDPTransport(socket: clientSocket, maxDatagram: maxMessage)),
            clock: ManualClock(), offloads: offloads, deferredHandshakes: deferredHandshakes, packetThreads: packetThreads)
        return DaemonPair(
            underlay: .fakeUDP, server: server, client: client, udp: (network, serverSocket, clientSocket))
    }

    /// TCP over a FakeStreamNetwork: the server listens, the client dials. The server transport's
    /// admission limits are its defaults unless given.
    static func tcp(
        writeChunk: Int = .max, pipeCapacity: Int = 1 << 16, maximumConnections: Int = 256,
        unauthenticatedDeadline: Duration = TCPServerTransport.defaultUnauthenticatedDeadline,
        unauthenticatedPerSource: Int = 8
    ) throws -> DaemonPair {
        let ids = TestIdentities()
        let network = FakeStreamNetwork()
        network.writeChunk = writeChunk
        network.pipeCapacity = pipeCapacity
        let listener = try FakeStreamListener(network: network, endpoint: serverEndpoint)
        let clientClock = ManualClock()
        let dialer = FakeStreamDialer(network: network, localAddress: clientAddress, clock: clientClock)
        let serverLog = LogRecorder()
        let clientLog = LogRecorder()
        let server = try fakeNode(
            "server", configuration: ids.serverConfiguration(), seed: 100,
            transport: TCPServerTransport(
                listener: listener, maxFrame: maxMessage, logger: makeLogger(serverLog),
                maximumConnections: maximumConnections, unauthenticatedDeadline: unauthenticatedDeadline,
                unauthenticatedPerSource: unauthenticatedPerSource),
            clock: ManualClock(), log: serverLog)
        let client = try fakeNode(
            "client", configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), seed: 200,
            transport: TCPClientTransport(
                dialer: dialer, remote: serverEndpoint, maxFrame: maxMessage, logger: makeLogger(clientLog)),
            clock: clientClock, log: clientLog)
        return DaemonPair(underlay: .fakeTCP, server: server, client: client, tcp: (network, listener, dialer))
    }

    /// `Transport = auto` on both ends: UDP and TCP over fakes (the server listens on both at
    /// ``serverEndpoint``; the client dials TCP only when its session moves there), with the
    /// client's carrier choice (`.agile`) and the server's roaming across carriers (`.both`).
    static func dual(carrierSettings: CarrierSelector.Settings = CarrierSelector.Settings()) throws -> DaemonPair {
        let ids = TestIdentities()
        let datagrams = FakeDatagramNetwork(seed: 1)
        let serverSocket = try FakeDatagramSocket(network: datagrams, endpoint: serverEndpoint)
        let clientSocket = try FakeDatagramSocket(network: datagrams, endpoint: Endpoint(ipv4: 192, 0, 2, 2, port: 40000))
        let streams = FakeStreamNetwork()
        let listener = try FakeStreamListener(network: streams, endpoint: serverEndpoint)
        let clientClock = ManualClock()
        let dialer = FakeStreamDialer(network: streams, localAddress: clientAddress, clock: clientClock)
        let serverLog = LogRecorder()
        let clientLog = LogRecorder()
        var serverConfiguration = ids.serverConfiguration()
        serverConfiguration.carriers = .both
        var clientConfiguration = ids.clientConfiguration(serverEndpoint: serverEndpoint)
        clientConfiguration.carriers = .agile
        clientConfiguration.carrierSettings = carrierSettings
        let server = try fakeNode(
            "server", configuration: serverConfiguration, seed: 100,
            transport: DualTransport(
                udp: UDPTransport(socket: serverSocket, maxDatagram: maxMessage),
                server: TCPServerTransport(listener: listener, maxFrame: maxMessage, logger: makeLogger(serverLog))),
            clock: ManualClock(), log: serverLog)
        let client = try fakeNode(
            "client", configuration: clientConfiguration, seed: 200,
            transport: DualTransport(
                udp: UDPTransport(socket: clientSocket, maxDatagram: maxMessage),
                client: TCPClientTransport(
                    dialer: dialer, remote: serverEndpoint, maxFrame: maxMessage, logger: makeLogger(clientLog))),
            clock: clientClock, log: clientLog)
        return DaemonPair(
            underlay: .fakeUDP, server: server, client: client, udp: (datagrams, serverSocket, clientSocket),
            tcp: (streams, listener, dialer))
    }

    /// The fake UDP network and its two sockets (``udp(seed:impairment:deferredHandshakes:mode:offloads:wrapClientTransport:)``).
    var datagrams: FakeDatagramNetwork { udpParts!.network }
    var serverSocket: FakeDatagramSocket { udpParts!.server }
    var clientSocket: FakeDatagramSocket { udpParts!.client }
    /// The fake TCP network, the server's listener and the client's dialer (``tcp(writeChunk:pipeCapacity:maximumConnections:unauthenticatedDeadline:unauthenticatedPerSource:)``).
    var streams: FakeStreamNetwork { tcpParts!.network }
    var listener: FakeStreamListener { tcpParts!.listener }
    var dialer: FakeStreamDialer { tcpParts!.dialer }

    /// Runs both loops until `done()` holds: rounds that never wait on fakes, 1 ms waits on
    /// loopback (at most 5 s in all). Records an issue if `done()` never holds.
    func drive(until done: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) throws {
        if underlay == .loopbackUDP {
            let deadline = BootClock().now() + .seconds(5)
            while BootClock().now() < deadline {
                if done() { return }
                try server.dataPlane.runOnce(timeoutCap: .milliseconds(1))
                try client.dataPlane.runOnce(timeoutCap: .milliseconds(1))
            }
        } else {
            for _ in 0..<1000 {
                if done() { return }
                try server.dataPlane.runOnce(timeoutCap: .zero)
                try client.dataPlane.runOnce(timeoutCap: .zero)
            }
        }
        if !done() { Issue.record("condition not reached over \(underlay)", sourceLocation: sourceLocation) }
    }
}

/// Open file descriptors of this process.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}
