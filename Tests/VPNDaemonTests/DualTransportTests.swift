// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

/// `Transport = auto` end to end on fakes: a server on UDP and TCP, a client that starts on UDP,
/// moves its session to TCP when UDP goes silent and back when UDP answers, with no new handshake.
@Suite struct DualTransportTests {
    /// Moves both clocks on by `step` and runs both loops, `steps` times, injecting one
    /// client-to-server packet per step (numbered from `first`); returns the packets the server got.
    @discardableResult
    func run(
        _ pair: DaemonPair, steps: Int, step: Duration = .milliseconds(100), first: Int = 0,
        until done: (DaemonPair) -> Bool = { _ in false }
    ) throws -> [[UInt8]] {
        var received: [[UInt8]] = []
        for i in 0..<steps {
            pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(first + i)))
            pair.server.manualClock.advance(by: step)
            pair.client.manualClock.advance(by: step)
            try pump([pair.client, pair.server])
            received += pair.server.device.takeWritten()
            if done(pair) { break }
        }
        return received
    }

    func peerStatus(_ node: Node) throws -> PeerStatus {
        try #require(try node.snapshot()?.tunnel.peers.first)
    }

    func blockUDP(_ pair: DaemonPair, _ blocked: Bool) {
        pair.datagrams.impairment = blocked ? Impairment(loss: 1) : .none
    }

    @Test func udpWorksSoTCPIsNeverDialled() throws {
        let pair = try DaemonPair.dual()
        let got = try run(pair, steps: 30)
        #expect(got.count == 30)
        #expect(pair.dialer.attempts.isEmpty)
        #expect(try peerStatus(pair.client).carrier == .udp)
        #expect(try peerStatus(pair.client).carrierSwitches == 0)
        #expect(try peerStatus(pair.server).carrier == .udp)
    }

    @Test func udpBlockedFromTheStartComesUpOverTCPWithinFourSeconds() throws {
        let pair = try DaemonPair.dual()
        blockUDP(pair, true)
        let start = pair.client.manualClock.now()
        let got = try run(pair, steps: 80, until: { ((try? peerStatus($0.server))?.receivedPackets ?? 0) > 0 })
        let elapsed = pair.client.manualClock.now() - start
        #expect(!got.isEmpty)
        #expect(elapsed <= .seconds(4), "up after \(elapsed): \(pair.client.log.all.joined(separator: "\n"))")
        #expect(pair.dialer.dialled.count == 1)
        let client = try peerStatus(pair.client)
        #expect(client.carrier == .tcp)
        #expect(client.carrierSwitches == 1)
        #expect(client.handshakes == 1)
        #expect(try peerStatus(pair.server).carrier == .tcp)
        #expect(pair.client.log.contains("session moved to TCP, no new handshake: no handshake answer over UDP within 3 s"))
    }

    @Test func udpBlockedMidSessionMovesToTCPAndBackWithOneHandshake() throws {
        let pair = try DaemonPair.dual()
        #expect(try run(pair, steps: 10).count == 10)
        #expect(try peerStatus(pair.server).handshakes == 1)

        // UDP goes silent: within about two seconds the session is on TCP, and the packets sent
        // after the move arrive.
        blockUDP(pair, true)
        let blockedAt = pair.client.manualClock.now()
        try run(pair, steps: 50, first: 100, until: { (try? peerStatus($0.client).carrier) == .tcp })
        let moved = pair.client.manualClock.now() - blockedAt
        #expect(moved <= .milliseconds(2600), "moved after \(moved)")
        var got = try run(pair, steps: 20, first: 200)
        #expect(got.count == 20)
        #expect(try peerStatus(pair.server).carrier == .tcp)
        // And the server's packets go back over the connection the client made.
        pair.server.device.inject(ipv4Packet(from: serverInner, to: clientInner, payload: numbered(9, count: 1300)))
        try pump([pair.client, pair.server])
        #expect(pair.client.device.takeWritten().count == 1)

        // UDP answers again: back on UDP once it answered for five seconds, the TCP connection closed.
        blockUDP(pair, false)
        let unblockedAt = pair.client.manualClock.now()
        got = try run(pair, steps: 150, first: 300, until: { (try? peerStatus($0.client).carrier) == .udp })
        let back = pair.client.manualClock.now() - unblockedAt
        #expect(back >= .seconds(5) && back <= .seconds(8), "back after \(back)")
        // The TCP connection stays 5 s for what is still in flight, then closes.
        got += try run(pair, steps: 60, first: 500)
        #expect(got.count >= 60)
        #expect(try peerStatus(pair.server).carrier == .udp)
        #expect(pair.dialer.dialled.allSatisfy { $0.isClosed })
        let client = try peerStatus(pair.client)
        #expect(client.carrierSwitches == 2)
        #expect(client.handshakes == 1)
        #expect(try peerStatus(pair.server).handshakes == 1)
        #expect(pair.client.log.contains("session moved to UDP, no new handshake: UDP answered every probe for 5 s"))
    }

    @Test func aWireGuardStyleUDPClientIsAnsweredByAnAutoServer() throws {
        // The server half of `dual` with a plain UDP client: the server answers over UDP.
        let ids = TestIdentities()
        let pair = try DaemonPair.dual()
        let plainSocket = try FakeDatagramSocket(network: pair.datagrams, endpoint: Endpoint(ipv4: 192, 0, 2, 3, port: 41000))
        let plain = try fakeNode(
            "plain", configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), seed: 300,
            transport: UDPTransport(socket: plainSocket, maxDatagram: maxMessage), clock: ManualClock())
        plain.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1)))
        try pump([plain, pair.server])
        #expect(pair.server.device.takeWritten().count == 1)
        let status = try peerStatus(pair.server)
        #expect(status.carrier == .udp)
        #expect(status.endpoint == Endpoint(ipv4: 192, 0, 2, 3, port: 41000))
    }
}
