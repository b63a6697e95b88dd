// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

/// Two DataPlanes over the TCP transports (server listener, client dialer) on fake streams.
@Suite struct TCPDataPlaneTests {
    /// Client and server exchange one packet each way; returns after both arrived.
    func exchange(_ pair: DaemonPair, tag: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(tag))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server], sourceLocation: sourceLocation)
        #expect(pair.server.device.takeWritten().map(\.count) == [up.count], sourceLocation: sourceLocation)
        let down = ipv4Packet(from: serverInner, to: clientInner, payload: numbered(tag + 1, count: 1300))
        pair.server.device.inject(down)
        try pump([pair.client, pair.server], sourceLocation: sourceLocation)
        #expect(pair.client.device.takeWritten().map(\.count) == [down.count], sourceLocation: sourceLocation)
    }

    @Test(arguments: [Int.max, 1, 3, 64])
    func handshakeAndPacketsBothWays(writeChunk: Int) throws {
        // Small chunks and a small pipe force partial writes, the send queue and writable waits.
        let pair = try DaemonPair.tcp(writeChunk: writeChunk, pipeCapacity: writeChunk == .max ? 1 << 16 : 200)
        try exchange(pair, tag: 0)
        let ups = (0..<40).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0, count: 30 * $0)) }
        let downs = (0..<40).map { ipv4Packet(from: serverInner, to: clientInner, payload: numbered($0, count: 1380 - $0)) }
        for p in ups { pair.client.device.inject(p) }
        for p in downs { pair.server.device.inject(p) }
        try pump([pair.client, pair.server], maxRounds: 100_000)
        #expect(pair.server.device.takeWritten() == ups)
        #expect(pair.client.device.takeWritten() == downs)
        #expect(pair.dialer.dialled.count == 1)
        if writeChunk != .max { #expect(pair.dialer.dialled[0].shortWrites > 0) }
        let status = try #require(try pair.server.snapshot())
        #expect(status.peers[0].latestHandshake != nil)
        #expect(status.peers[0].receivedPackets >= 41)
    }

    @Test func resetIsRedialledWithBackoffAndTheSessionGoesOn() throws {
        let pair = try DaemonPair.tcp()
        try exchange(pair, tag: 0)
        let firstHandshake = try #require(try pair.server.snapshot()?.peers[0].latestHandshake)
        let oldClientEnd = pair.dialer.dialled[0]
        let oldServerEnd = pair.listener.accepted[0]

        // The connection breaks; the next two connects are refused.
        pair.dialer.refuseNext = 2
        oldClientEnd.reset()
        pair.server.manualClock.advance(by: .seconds(1))
        try pump([pair.client, pair.server])
        #expect(oldClientEnd.isClosed)
        #expect(oldServerEnd.isClosed)
        #expect(!pair.client.fakePoller.registeredHandles.contains(oldClientEnd.pollHandle))
        #expect(!pair.server.fakePoller.registeredHandles.contains(oldServerEnd.pollHandle))
        #expect(pair.client.log.contains("TCP: connection to"))

        // Let the client's clock run to each redial (idle waits advance it to the deadline).
        let brokenAt = pair.client.manualClock.now()
        for _ in 0..<20 where pair.dialer.attempts.count < 4 {
            try pair.client.dataPlane.runOnce(timeoutCap: .seconds(10))
        }
        #expect(pair.dialer.attempts.count == 4)
        let redials = Array(pair.dialer.attempts.dropFirst())
        let gaps = zip([brokenAt] + redials, redials).map { $1 - $0 }
        #expect(gaps == [.milliseconds(250), .milliseconds(500), .milliseconds(1000)])

        // Connected again: no new handshake (the client's keepalive tells the server the new
        // connection), packets flow both ways over it, and the reconnect check finds an answer.
        pair.server.manualClock.advance(by: .seconds(10))
        try pump([pair.client, pair.server])
        try exchange(pair, tag: 10)
        pair.client.manualClock.advance(by: Tunnel.reconnectCheck)
        try pump([pair.client, pair.server])
        let secondHandshake = try #require(try pair.server.snapshot()?.peers[0].latestHandshake)
        #expect(secondHandshake == firstHandshake)
        #expect(try pair.server.snapshot()?.peers[0].handshakes == 1)
        #expect(pair.client.log.contains("TCP connection made again; the session goes on over it"))
        #expect(pair.listener.accepted.count == 2)
        #expect(!pair.listener.accepted[1].isClosed)
        #expect(pair.listener.accepted[1].bytesRead > 0)

        // A later break starts again from the shortest backoff.
        let before = pair.dialer.attempts.count
        pair.dialer.dialled.last!.reset()
        let brokenAgainAt = pair.client.manualClock.now()
        for _ in 0..<5 where pair.dialer.attempts.count == before {
            try pair.client.dataPlane.runOnce(timeoutCap: .seconds(10))
        }
        #expect(pair.dialer.attempts.last.map { $0 - brokenAgainAt } == .milliseconds(250))
    }

    @Test(arguments: [
        [0, 0],  // length 0
        [0xFF, 0xFF] + [UInt8](repeating: 1, count: 64),  // over the maximum
        [UInt8(truncatingIfNeeded: (maxMessage + 1) >> 8), UInt8(truncatingIfNeeded: maxMessage + 1)],  // one over
        [0, 4, 9, 9, 9, 9],  // a frame that is no message
    ])
    func hostileFrameClosesThatConnectionOnly(frame: [UInt8]) throws {
        let pair = try DaemonPair.tcp()
        try exchange(pair, tag: 0)
        let attacker = FakeStreamDialer(network: pair.streams, localAddress: Endpoint(ipv4: 203, 0, 113, 9, port: 0))
        let hostile = try attacker.connect(to: serverEndpoint) as! FakeStreamConnection
        frame.withUnsafeBytes { _ = try? hostile.write($0) }
        try pump([pair.client, pair.server])

        #expect(pair.listener.accepted.count == 2)
        let serverEnd = pair.listener.accepted[1]
        #expect(serverEnd.isClosed)
        #expect(hostile.peerClosed)
        #expect(!pair.server.fakePoller.registeredHandles.contains(serverEnd.pollHandle))
        // The legitimate connection is untouched and still carries packets.
        #expect(!pair.listener.accepted[0].isClosed)
        try exchange(pair, tag: 20)
        #expect(pair.dialer.dialled.count == 1)
    }

    @Test func streamClosedAtTheServerEndIsRedialled() throws {
        let pair = try DaemonPair.tcp()
        try exchange(pair, tag: 0)
        // The server's end is closed (FIN) under the server's feet: the client sees end of stream
        // and redials; the server goes on serving the new connection.
        pair.listener.accepted[0].close()
        try pump([pair.client, pair.server])
        #expect(pair.dialer.dialled[0].isClosed)
        #expect(pair.client.log.contains("closed by peer"))
        for _ in 0..<5 where pair.dialer.attempts.count < 2 {
            try pair.client.dataPlane.runOnce(timeoutCap: .seconds(10))
        }
        // 50 ms later at the server, or it takes the new initiation for a flood (rate-limited).
        pair.server.manualClock.advance(by: .seconds(1))
        try pump([pair.client, pair.server])
        try exchange(pair, tag: 30)
    }

    @Test func heldConnectSendsNothingUntilConnected() throws {
        let pair = try DaemonPair.tcp()
        pair.dialer.holdConnects = true
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1)))
        try pump([pair.client, pair.server])
        #expect(pair.dialer.dialled.count == 1)
        #expect(pair.dialer.dialled[0].state == .connecting)
        #expect(pair.listener.accepted.isEmpty)
        pair.dialer.dialled[0].completeConnect()
        try pump([pair.client, pair.server])
        // The staged packet went out after the handshake on the new connection.
        #expect(pair.server.device.takeWritten().count == 1)
    }
}

/// A TCP reconnect to a server that restarted (it lost the session's keys): nothing answers the
/// keepalive and probe over the new connection, so after ``Tunnel/reconnectCheck`` the client
/// handshakes again.
@Suite struct TCPReconnectToRestartedServerTests {
    @Test func aRestartedServerIsFoundAboutASecondAfterTheReconnect() throws {
        let pair = try DaemonPair.tcp()
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten().count == 1)

        // The server "restarts": a new daemon with no sessions takes over the listener; the old
        // connection breaks.
        let ids = TestIdentities()
        let restarted = try fakeNode(
            "server2", configuration: ids.serverConfiguration(), seed: 300,
            transport: TCPServerTransport(listener: pair.listener, maxFrame: maxMessage, logger: makeLogger(LogRecorder())),
            clock: ManualClock())
        pair.dialer.dialled[0].reset()
        pair.listener.accepted[0].reset()
        // Idle waits move the client's clock to its redial (250 ms).
        for _ in 0..<20 where pair.dialer.dialled.count < 2 {
            try pair.client.dataPlane.runOnce(timeoutCap: .seconds(1))
        }
        try pump([pair.client, restarted])
        #expect(pair.dialer.dialled.count == 2)
        #expect(try restarted.snapshot()?.tunnel.peers[0].handshakes == 0)

        // Within the check nothing came back; after it, a new handshake, and packets flow again.
        pair.client.manualClock.advance(by: Tunnel.reconnectCheck)
        restarted.manualClock.advance(by: Tunnel.reconnectCheck)
        try pump([pair.client, restarted])
        #expect(pair.client.log.contains("nothing authenticated came back after the TCP reconnect"))
        #expect(try restarted.snapshot()?.tunnel.peers[0].handshakes == 1)
        pair.client.device.inject(up)
        try pump([pair.client, restarted])
        #expect(restarted.device.takeWritten().count == 1)
    }
}
