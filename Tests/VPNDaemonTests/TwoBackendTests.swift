// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNLinux
import VPNTesting

/// Where the two DataPlanes' UDP transports run.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    /// FakeDatagramNetwork, FakePoller, FakeWakeup, ManualClock: deterministic.
    case fakes
    /// VPNLinux UDPSocket on 127.0.0.1 ephemeral ports, EpollPoller, EventFDWakeup, BootClock; the tun
    /// devices stay fakes (their readiness through a real eventfd).
    case loopback

    var testDescription: String { rawValue }
}

extension DaemonPair {
    /// A pair on `backend`.
    static func on(_ backend: Backend) throws -> DaemonPair {
        backend == .fakes ? try udp() : try loopback()
    }

    /// Real UDP sockets on 127.0.0.1 ephemeral ports, EpollPoller, EventFDWakeup, BootClock; the
    /// tun devices stay fakes (their readiness through a real eventfd).
    static func loopback() throws -> DaemonPair {
        let ids = TestIdentities()
        let loopback = Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let serverSocket = try UDPSocket(bindingTo: loopback, bufferSize: 1 << 20)
        let clientSocket = try UDPSocket(bindingTo: loopback, bufferSize: 1 << 20)
        func node(_ name: String, _ configuration: TunnelConfiguration, seed: UInt64, socket: UDPSocket) throws -> Node {
            try Node(
                name: name, configuration: configuration, entropySeed: seed,
                device: FakePacketDevice(name: "\(name)0", readinessSignal: try EventFDWakeup()),
                transport: UDPTransport(socket: socket, maxDatagram: maxMessage), poller: try EpollPoller(),
                clock: BootClock(), wakeup: try EventFDWakeup())
        }
        return DaemonPair(
            underlay: .loopbackUDP, server: try node("server", ids.serverConfiguration(), seed: 100, socket: serverSocket),
            client: try node(
                "client", ids.clientConfiguration(serverEndpoint: serverSocket.localEndpoint), seed: 200, socket: clientSocket))
    }
}

/// The same daemon tests on fakes and on real loopback sockets ("same suite, two backends").
/// Serialized: the loopback case counts this process's file descriptors.
@Suite(.serialized) struct TwoBackendTests {
    @Test(arguments: Backend.allCases)
    func udpPacketsBothWays(backend: Backend) throws {
        let baseline = openDescriptorCount()
        try exercise(backend)
        // Leak check: every socket, epoll and eventfd the test opened is closed again.
        if backend == .loopback { #expect(descriptorsSettle(atMost: baseline)) }
    }

    private func exercise(_ backend: Backend) throws {
        let pair = try DaemonPair.on(backend)
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pair.drive { pair.server.device.written.count >= 1 }
        #expect(pair.server.device.takeWritten() == [up])

        let down = ipv4Packet(from: serverInner, to: clientInner, payload: numbered(2, count: 1400))
        pair.server.device.inject(down)
        try pair.drive { pair.client.device.written.count >= 1 }
        #expect(pair.client.device.takeWritten() == [down])

        let ups = (0..<50).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0, count: 20 + $0)) }
        let downs = (0..<50).map { ipv4Packet(from: serverInner, to: clientInner, payload: numbered($0, count: 1000 + $0)) }
        for p in ups { pair.client.device.inject(p) }
        for p in downs { pair.server.device.inject(p) }
        try pair.drive { pair.server.device.written.count >= 50 && pair.client.device.written.count >= 50 }
        #expect(pair.server.device.takeWritten() == ups)
        #expect(pair.client.device.takeWritten() == downs)

        let status = try #require(try pair.server.snapshot())
        #expect(status.peers[0].latestHandshake != nil)
        #expect(status.peers[0].hasSession)
        #expect(status.peers[0].receivedPackets >= 51)
        #expect(status.peers[0].sentPackets == 51)
    }

    @Test func requestStopFromAnotherThreadEndsRun() throws {
        let baseline = openDescriptorCount()
        try stopFromOutside()
        #expect(descriptorsSettle(atMost: baseline))
    }

    private func stopFromOutside() throws {
        let pair = try DaemonPair.loopback()
        let box = DataPlaneBox(pair.client.dataPlane)
        let finished = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let thread = Thread {
            result.set(box.dataPlane.run())
            finished.signal()
        }
        thread.start()
        // run() started a handshake: the server (driven here; the client only by its own thread)
        // answers, and the client's snapshot, asked for from this thread, shows the session.
        let deadline = Date().addingTimeInterval(5)
        var generation = pair.client.control.requestSnapshot()
        var established = false
        while Date() < deadline && !established {
            try pair.server.dataPlane.runOnce(timeoutCap: .milliseconds(1))
            if let status = pair.client.control.snapshot(newerThan: generation) {
                established = status.peers[0].hasSession
                generation = pair.client.control.requestSnapshot()
            }
        }
        #expect(established)
        pair.client.control.requestStop()
        #expect(finished.wait(timeout: .now() + 5) == .success)
        #expect(result.stoppedCleanly)
        // Let the thread exit and release its closure (and the data plane's descriptors).
        while !thread.isFinished && Date() < deadline.addingTimeInterval(5) { usleep(1000) }
    }
}

/// Hands a DataPlane to the thread that runs it (the test thread no longer touches it).
private final class DataPlaneBox: @unchecked Sendable {
    let dataPlane: DataPlane
    init(_ dataPlane: DataPlane) { self.dataPlane = dataPlane }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: IOError?? = .none
    func set(_ error: IOError?) { lock.withLock { value = .some(error) } }
    var stoppedCleanly: Bool { lock.withLock { if case .some(.none) = value { return true } else { return false } } }
}

/// True once the process has at most `baseline` descriptors open, polling for up to 2 s: other
/// tests run in parallel in this process and open descriptors of their own for a moment, but a
/// leak from the test that measured `baseline` stays.
func descriptorsSettle(atMost baseline: Int) -> Bool {
    for _ in 0..<200 {
        if openDescriptorCount() <= baseline { return true }
        usleep(10_000)
    }
    return false
}
