// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

/// The TCP server's admission rules: a connection earns its place by an authenticated message.
/// Before them, the server stamped activity on accept and on any well-formed frame and evicted
/// the idlest of its 256 connections for each newcomer, so anyone able to open connections fast
/// closed every real client that had been quiet for a moment (and each redial cost a handshake).
@Suite struct TCPAdmissionTests {
    /// A dialer for the attacker at 203.0.113.`host` (or 198.51.100.x past 255).
    static func attacker(_ pair: DaemonPair, host: Int) -> FakeStreamDialer {
        let address =
            host < 256
            ? Endpoint(ipv4: 203, 0, 113, UInt8(host), port: 0) : Endpoint(ipv4: 198, 51, 100, UInt8(host - 256), port: 0)
        return FakeStreamDialer(network: pair.streams, localAddress: address)
    }

    /// A frame that is a well-formed message but authenticates nothing: an initiation with a
    /// random mac1 (dropped as invalid-mac1) or a data message for no session.
    static func wellFormedFrame(initiation: Bool) -> [UInt8] {
        let size = initiation ? 148 : 64
        var frame: [UInt8] = [UInt8(size >> 8), UInt8(size & 0xFF), initiation ? 1 : 4, 0, 0, 0]
        frame += (0..<(size - 4)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        return frame
    }

    static func write(_ bytes: [UInt8], to connection: FakeStreamConnection) {
        bytes.withUnsafeBytes { _ = try? connection.write($0) }
    }

    /// Sets up a tunnel whose one connection has authenticated (a packet went up).
    static func authenticatedPair(_ pair: DaemonPair, payload: Int = 1) throws {
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(payload))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [up])
    }

    /// Packets still pass both ways over the client's first (and only) connection.
    static func expectTunnelIntact(_ pair: DaemonPair, payload: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(payload))
        let down = ipv4Packet(from: serverInner, to: clientInner, payload: numbered(payload + 1))
        pair.client.device.inject(up)
        pair.server.device.inject(down)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [up], sourceLocation: sourceLocation)
        #expect(pair.client.device.takeWritten() == [down], sourceLocation: sourceLocation)
        #expect(pair.dialer.dialled.count == 1, "the client redialled", sourceLocation: sourceLocation)
        #expect(!pair.dialer.dialled[0].peerClosed, "the server closed the real client", sourceLocation: sourceLocation)
        #expect(!pair.client.log.contains("failed"), sourceLocation: sourceLocation)
    }

    /// A keepalive right after the handshake is what authenticates a connection that has no data
    /// to send; the handshake alone does not.
    @Test func theKeepaliveAfterTheHandshakeAuthenticates() throws {
        let pair = try DaemonPair.tcp()
        try pump([pair.client, pair.server])
        let status = try #require(try pair.server.snapshot()?.tcp)
        #expect(status.open == 1)
        #expect(status.authenticated == 1)
        #expect(pair.server.tunnel.status(now: pair.server.clock.now()).peers[0].latestHandshake != nil)
        // The client's connection has carried nothing authenticated towards it yet (a response only).
        #expect(try pair.client.snapshot()?.tcp == TCPConnectionStatus(open: 1, authenticated: 0, connects: 1))
    }

    /// All slots taken by authenticated connections: a newcomer is refused, none is evicted.
    @Test func fullServerOfAuthenticatedConnectionsRefusesANewcomer() throws {
        let pair = try DaemonPair.tcp(maximumConnections: 1)
        try Self.authenticatedPair(pair)
        pair.server.manualClock.advance(by: .seconds(1))
        let hostile = try Self.attacker(pair, host: 9).connect(to: serverEndpoint) as! FakeStreamConnection
        try pump([pair.client, pair.server])
        #expect(hostile.peerClosed)
        #expect(pair.server.log.contains("all 1 connections are authenticated"))
        try Self.expectTunnelIntact(pair, payload: 2)
        let status = try #require(try pair.server.snapshot()?.tcp)
        #expect(status.refusedFull == 1)
        #expect(status.evicted == 0)
        #expect(status.open == 1 && status.authenticated == 1)
    }

    /// Unauthenticated connections, silent or sending well-formed frames that authenticate
    /// nothing, are closed on the tick at their deadline; the authenticated one stays.
    @Test func unauthenticatedConnectionsPastTheirDeadlineAreClosedOnTick() throws {
        let pair = try DaemonPair.tcp()
        try Self.authenticatedPair(pair)
        let opened = pair.server.clock.now()
        let silent = try Self.attacker(pair, host: 9).connect(to: serverEndpoint) as! FakeStreamConnection
        let initiator = try Self.attacker(pair, host: 10).connect(to: serverEndpoint) as! FakeStreamConnection
        let sender = try Self.attacker(pair, host: 11).connect(to: serverEndpoint) as! FakeStreamConnection
        Self.write(Self.wellFormedFrame(initiation: true), to: initiator)
        Self.write(Self.wellFormedFrame(initiation: false), to: sender)
        try pump([pair.server])
        #expect(!silent.peerClosed && !initiator.peerClosed && !sender.peerClosed)
        // The data plane wakes for the deadline.
        #expect(TCPServerTransport.defaultUnauthenticatedDeadline == .seconds(10))
        #expect(pair.server.transport.nextDeadline == opened + .seconds(10))
        pair.server.manualClock.advance(by: .milliseconds(9999))
        try pump([pair.server])
        #expect(!silent.peerClosed && !initiator.peerClosed && !sender.peerClosed)
        pair.server.manualClock.advance(by: .milliseconds(1))
        try pair.server.dataPlane.runOnce(timeoutCap: .zero)
        #expect(silent.peerClosed && initiator.peerClosed && sender.peerClosed)
        #expect(pair.server.transport.nextDeadline == nil)
        let status = try #require(try pair.server.snapshot()?.tcp)
        #expect(status.expired == 3)
        #expect(status.open == 1 && status.authenticated == 1)
        try Self.expectTunnelIntact(pair, payload: 2)
    }

    /// One source address holds at most 8 unauthenticated connections; others are unaffected,
    /// and a slot freed at that address can be taken again.
    @Test func perSourceCap() throws {
        let pair = try DaemonPair.tcp()
        let attacker = Self.attacker(pair, host: 9)
        let held = try (0..<8).map { _ in try attacker.connect(to: serverEndpoint) as! FakeStreamConnection }
        try pump([pair.server])
        #expect(held.allSatisfy { !$0.peerClosed })
        let ninth = try attacker.connect(to: serverEndpoint) as! FakeStreamConnection
        try pump([pair.server])
        #expect(ninth.peerClosed)
        #expect(held.allSatisfy { !$0.peerClosed })
        #expect(pair.server.log.contains("already has 8 unauthenticated connections"))
        let neighbour = try Self.attacker(pair, host: 10).connect(to: serverEndpoint) as! FakeStreamConnection
        try pump([pair.server])
        #expect(!neighbour.peerClosed)
        // Junk closes one of the eight; the address may open one more.
        Self.write([0, 0, 1, 2, 3], to: held[0])
        try pump([pair.server])
        #expect(held[0].peerClosed)
        let again = try attacker.connect(to: serverEndpoint) as! FakeStreamConnection
        try pump([pair.server])
        #expect(!again.peerClosed)
        let status = try #require(try pair.server.snapshot()?.tcp)
        #expect(status.refusedSourceCap == 1)
        #expect(status.open == 9)
        // The real client, from its own address, is not affected.
        try Self.authenticatedPair(pair)
    }

    /// 1,280 connections from 160 addresses while the real client is quiet: the table fills, the
    /// oldest unauthenticated connection makes room each time, and the client is never touched.
    @Test func authenticatedConnectionSurvivesAFloodOfAccepts() throws {
        let pair = try DaemonPair.tcp()
        try Self.authenticatedPair(pair)
        let attackers = (0..<160).map { Self.attacker(pair, host: $0 + 1) }
        var hostile: [FakeStreamConnection] = []
        for _ in 0..<8 {
            pair.server.manualClock.advance(by: .milliseconds(1))
            for attacker in attackers { hostile.append(try attacker.connect(to: serverEndpoint) as! FakeStreamConnection) }
            try pump([pair.server])
        }
        #expect(pair.listener.accepted.count == 1 + 1280)
        // The newest 255 are open, every older one was evicted.
        #expect(hostile.suffix(255).allSatisfy { !$0.peerClosed })
        #expect(hostile.prefix(1280 - 255).allSatisfy { $0.peerClosed })
        let status = try #require(try pair.server.snapshot()?.tcp)
        #expect(status.evicted == 1280 - 255)
        #expect(status.refusedSourceCap == 0 && status.refusedFull == 0)
        #expect(status.open == 256 && status.authenticated == 1)
        try Self.expectTunnelIntact(pair, payload: 2)
    }
}
