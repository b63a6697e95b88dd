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

    func serverConfiguration() -> TunnelConfiguration {
        TunnelConfiguration(
            mode: .tun, privateKey: serverKey, mtu: testMTU,
            peers: [PeerConfiguration(publicKey: clientPublic, allowedIPs: [IPPrefix("10.8.0.2/32")!])])
    }

    func clientConfiguration(serverEndpoint: Endpoint) -> TunnelConfiguration {
        TunnelConfiguration(
            mode: .tun, privateKey: clientKey, mtu: testMTU,
            peers: [
                PeerConfiguration(publicKey: serverPublic, allowedIPs: [IPPrefix("10.8.0.0/24")!], endpoint: serverEndpoint)
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
        offloads: DataPlaneOffloads = DataPlaneOffloads(), deferredHandshakes: Bool = false
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
            handshakeThread: deferredHandshakes ? (poller: FakePoller(clock: ManualClock()), doorbell: FakeWakeup()) : nil))
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
    log: LogRecorder = LogRecorder(), offloads: DataPlaneOffloads = DataPlaneOffloads(), deferredHandshakes: Bool = false
) throws -> Node {
    try Node(
        name: name, configuration: configuration, entropySeed: seed, device: FakePacketDevice(name: "\(name)0"),
        transport: transport, poller: FakePoller(clock: clock), clock: clock, wakeup: FakeWakeup(), log: log,
        offloads: offloads, deferredHandshakes: deferredHandshakes)
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

/// A server and a client over a FakeDatagramNetwork.
struct UDPFakePair {
    let network: FakeDatagramNetwork
    let serverSocket: FakeDatagramSocket
    let clientSocket: FakeDatagramSocket
    let server: Node
    let client: Node

    init(seed: UInt64 = 1, impairment: FakeDatagramNetwork.Impairment = .none, deferredHandshakes: Bool = false) throws {
        let ids = TestIdentities()
        network = FakeDatagramNetwork(seed: seed, impairment: impairment)
        serverSocket = try FakeDatagramSocket(network: network, endpoint: serverEndpoint)
        clientSocket = try FakeDatagramSocket(network: network, endpoint: clientAddress)
        server = try fakeNode(
            "server", configuration: ids.serverConfiguration(), seed: 100,
            transport: UDPTransport(socket: serverSocket, maxDatagram: maxMessage), clock: ManualClock(),
            deferredHandshakes: deferredHandshakes)
        client = try fakeNode(
            "client", configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), seed: 200,
            transport: UDPTransport(socket: clientSocket, maxDatagram: maxMessage), clock: ManualClock(),
            deferredHandshakes: deferredHandshakes)
    }
}

/// A server (listener) and a client (dialer) over a FakeStreamNetwork.
struct TCPFakePair {
    let network: FakeStreamNetwork
    let listener: FakeStreamListener
    let dialer: FakeStreamDialer
    let server: Node
    let client: Node

    /// The server transport's admission limits are its defaults unless given.
    init(
        writeChunk: Int = .max, pipeCapacity: Int = 1 << 16, maximumConnections: Int = 256,
        unauthenticatedDeadline: Duration = TCPServerTransport.defaultUnauthenticatedDeadline,
        unauthenticatedPerSource: Int = 8
    ) throws {
        let ids = TestIdentities()
        network = FakeStreamNetwork()
        network.writeChunk = writeChunk
        network.pipeCapacity = pipeCapacity
        listener = try FakeStreamListener(network: network, endpoint: serverEndpoint)
        let clientClock = ManualClock()
        dialer = FakeStreamDialer(network: network, localAddress: clientAddress, clock: clientClock)
        let serverLog = LogRecorder()
        let clientLog = LogRecorder()
        server = try fakeNode(
            "server", configuration: ids.serverConfiguration(), seed: 100,
            transport: TCPServerTransport(
                listener: listener, maxFrame: maxMessage, logger: makeLogger(serverLog),
                maximumConnections: maximumConnections, unauthenticatedDeadline: unauthenticatedDeadline,
                unauthenticatedPerSource: unauthenticatedPerSource),
            clock: ManualClock(), log: serverLog)
        client = try fakeNode(
            "client", configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), seed: 200,
            transport: TCPClientTransport(
                dialer: dialer, remote: serverEndpoint, maxFrame: maxMessage, logger: makeLogger(clientLog)),
            clock: clientClock, log: clientLog)
    }
}

/// Open file descriptors of this process.
func openDescriptorCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}
