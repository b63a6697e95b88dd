// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

/// Two DataPlanes over a FakeDatagramNetwork, driven step by step.
@Suite struct UDPDataPlaneTests {
    @Test func handshakeThenPacketsBothWaysByteIdentical() throws {
        let pair = try DaemonPair.udp()
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        // The packet waited for the handshake, then came out of the server's tun unchanged.
        #expect(pair.server.device.takeWritten() == [up])

        let down = ipv4Packet(from: serverInner, to: clientInner, payload: numbered(2, count: 1000))
        pair.server.device.inject(down)
        try pump([pair.client, pair.server])
        #expect(pair.client.device.takeWritten() == [down])

        // Many packets, both ways at once: all arrive, in order.
        let ups = (0..<150).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0, count: 40 + $0)) }
        let downs = (0..<150).map { ipv4Packet(from: serverInner, to: clientInner, payload: numbered(-$0, count: 1400 - $0)) }
        for p in ups { pair.client.device.inject(p) }
        for p in downs { pair.server.device.inject(p) }
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == ups)
        #expect(pair.client.device.takeWritten() == downs)
        // Only one handshake was needed: initiation, response, then data.
        #expect(pair.datagrams.undeliverable == 0)
    }

    @Test func snapshotShowsHandshakeAndCounters() throws {
        let pair = try DaemonPair.udp()
        let before = try #require(try pair.server.snapshot())
        #expect(before.peers.count == 1)
        #expect(before.peers[0].latestHandshake == nil)
        #expect(before.peers[0].hasSession == false)

        let packets = (0..<5).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0)) }
        for p in packets { pair.client.device.inject(p) }
        try pump([pair.client, pair.server])
        #expect(pair.server.device.written.count == 5)

        let server = try #require(try pair.server.snapshot())
        #expect(server.peers[0].latestHandshake != nil)
        #expect(server.peers[0].hasSession)
        #expect(server.peers[0].receivedPackets >= 5)
        #expect(server.peers[0].receivedBytes == UInt64(packets.map(\.count).reduce(0, +)))
        #expect(server.peers[0].endpoint == pair.clientSocket.localEndpoint)

        let client = try #require(try pair.client.snapshot())
        #expect(client.peers[0].latestHandshake != nil)
        #expect(client.peers[0].sentPackets == 5)
        #expect(client.peers[0].sentBytes == UInt64(packets.map(\.count).reduce(0, +)))

        // A generation is published once: asking for a newer one without a request gives nothing.
        let generation = pair.server.control.requestSnapshot()
        #expect(pair.server.control.snapshot(newerThan: generation) == nil)
        try pair.server.dataPlane.runOnce(timeoutCap: .zero)
        #expect(pair.server.control.snapshot(newerThan: generation) != nil)
        #expect(pair.server.control.snapshot(newerThan: generation + 1) == nil)
    }

    @Test func duplicatedAndReorderedDatagramsDeliverEachPacketOnce() throws {
        let pair = try DaemonPair.udp(seed: 42, impairment: .init(duplication: 0.3, reordering: 0.3))
        // Establish the session first (the impairments apply to the handshake too).
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(-1)))
        try pump([pair.client, pair.server])
        pair.datagrams.releaseHeld()
        try pump([pair.client, pair.server])
        _ = pair.server.device.takeWritten()

        let packets = (0..<300).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0)) }
        for p in packets { pair.client.device.inject(p) }
        try pump([pair.client, pair.server])
        pair.datagrams.releaseHeld()
        try pump([pair.client, pair.server])
        let delivered = pair.server.device.takeWritten()
        #expect(pair.datagrams.duplicated > 0)
        #expect(pair.datagrams.reordered > 0)
        // The replay window lets each packet through exactly once, whatever the order.
        #expect(delivered.count == packets.count)
        #expect(Set(delivered) == Set(packets))
        #expect(delivered != packets)  // reordering happened on the way
        let status = try #require(try pair.server.snapshot())
        #expect((status.peers[0].drops[.replayed] ?? 0) > 0)
    }

    @Test func lossIsRecoveredByHandshakeRetries() throws {
        // Everything lost at first: the client retries its initiation every REKEY_TIMEOUT.
        let pair = try DaemonPair.udp(seed: 3, impairment: .init(loss: 1))
        let packet = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(9))
        pair.client.device.inject(packet)
        try pump([pair.client, pair.server])
        #expect(pair.datagrams.lost >= 1)
        #expect(pair.server.device.written.isEmpty)
        pair.datagrams.impairment = .none
        // Let the client's clock run to its retry deadline (the FakePoller advances it when idle).
        let start = pair.client.manualClock.now()
        try pair.client.dataPlane.runOnce(timeoutCap: nil)
        #expect(pair.client.manualClock.now() > start)
        #expect(pair.client.manualClock.now() - start <= .seconds(6))
        try pump([pair.client, pair.server])
        // The staged packet went out after the retried handshake.
        #expect(pair.server.device.takeWritten() == [packet])
    }

    @Test func garbageDatagramsAreDroppedAndTheLoopGoesOn() throws {
        let pair = try DaemonPair.udp()
        let stranger = Endpoint(ipv4: 198, 51, 100, 7, port: 999)
        let junk: [[UInt8]] = [
            [], [1], [4, 0, 0, 0], [UInt8](repeating: 0xFF, count: 2000), [1] + [UInt8](repeating: 0, count: 147),
            [4, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 60), [2] + [UInt8](repeating: 1, count: 91),
        ]
        for bytes in junk { pair.datagrams.transmit(bytes, from: stranger, to: serverEndpoint) }
        try pump([pair.server])
        let status = try #require(try pair.server.snapshot())
        // Each counted once (the tunnel counts its drops; the data plane must not count them again).
        #expect(status.drops.values.reduce(0, +) == UInt64(junk.count))
        // Still serving.
        let packet = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(5))
        pair.client.device.inject(packet)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [packet])
    }

    @Test func packetFromOutsideAllowedIPsIsDropped() throws {
        let pair = try DaemonPair.udp()
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(0)))
        try pump([pair.client, pair.server])
        _ = pair.server.device.takeWritten()
        // 10.8.0.3 is routed to the server by the client but is not the client's to send from.
        pair.client.device.inject(ipv4Packet(from: (10, 8, 0, 3), to: serverInner, payload: numbered(1)))
        try pump([pair.client, pair.server])
        #expect(pair.server.device.written.isEmpty)
        let status = try #require(try pair.server.snapshot())
        #expect(status.peers[0].drops[.sourceNotAllowed] == 1)
        #expect(status.drops[.sourceNotAllowed] == nil)  // counted once, for the peer
    }

    @Test func deviceThatWouldBlockCountsTheDrop() throws {
        let pair = try DaemonPair.udp()
        pair.server.device.acceptsWrites = false
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(0)))
        try pump([pair.client, pair.server])
        #expect(pair.server.device.refusedWrites == 1)
        let status = try #require(try pair.server.snapshot())
        #expect(status.drops[.queueFull] == 1)
    }

    @Test func requestStopMakesRunReturn() throws {
        let pair = try DaemonPair.udp()
        let poller = pair.client.fakePoller
        let control = pair.client.control
        // Unowned: the poller keeps this closure, so a strong capture would leak both (LeakSanitizer).
        poller.onWait = { [unowned poller] in if poller.waitCount == 5 { control.requestStop() } }
        let error = pair.client.dataPlane.run()
        #expect(error == nil)
        #expect(poller.waitCount == 5)
        // run() started a handshake with the peer that has an endpoint.
        #expect(pair.datagrams.transmitted >= 1)
        #expect(pair.serverSocket.pendingCount > 0)
    }

    @Test func runReturnsTheErrorThatStoppedIt() throws {
        let pair = try DaemonPair.udp()
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(0)))
        pair.client.device.nextReadError = IOError(operation: "read", subject: "client0", errno: 5, reason: "input/output error (EIO)")
        let error = pair.client.dataPlane.run()
        #expect(error?.errno == 5)
        #expect(pair.client.log.contains("data plane stopped"))
    }

    @Test("EBADFD on the tun: the interface was deleted, said as such, not as an error")
    func deletedInterfaceStopsQuietly() throws {
        let pair = try DaemonPair.udp()
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(0)))
        pair.client.device.nextReadError = IOError(operation: "read", subject: "client0", errno: 77, reason: "file descriptor in bad state (EBADFD)")
        let error = pair.client.dataPlane.run()
        #expect(error?.errno == 77)
        #expect(pair.client.log.contains("client0 is gone (deleted)"))
        #expect(!pair.client.log.contains("data plane stopped"))
    }
}
