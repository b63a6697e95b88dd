// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

/// Hostile or failing TCP peers: bugs the fakes found, now fixed; each test pins the behaviour.
@Suite struct TCPTransportHardeningTests {
    /// An accept() failure (EMFILE when descriptors run out, ENOBUFS) throws out of
    /// TCPServerTransport.handle, so runOnce throws and run() stops the whole daemon: one
    /// connection too many must not take the tunnel down.
    @Test func acceptFailureDoesNotStopTheDaemon() throws {
        let pair = try DaemonPair.tcp()
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [up])

        let attacker = FakeStreamDialer(network: pair.streams, localAddress: Endpoint(ipv4: 203, 0, 113, 9, port: 0))
        _ = try attacker.connect(to: serverEndpoint)
        pair.listener.nextAcceptError = IOError(
            operation: "accept", subject: "\(serverEndpoint)", errno: 24, reason: "too many open files (EMFILE)")
        // The failure is logged and accepting pauses; the data plane keeps running.
        try pair.server.dataPlane.runOnce(timeoutCap: .zero)
        #expect(pair.server.log.contains("accepting connections failed"))
        let later = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(2))
        pair.client.device.inject(later)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [later])
    }

    /// A frame of valid length that is not a WireGuard message closes the connection (right),
    /// but the log says "closed by peer": TCPTransportBase.handleLink picks the reason from
    /// `deframer.isInvalid`, which only covers bad lengths.
    @Test func malformedMessageIsLoggedAsInvalid() throws {
        let pair = try DaemonPair.tcp()
        let attacker = FakeStreamDialer(network: pair.streams, localAddress: Endpoint(ipv4: 203, 0, 113, 9, port: 0))
        let hostile = try attacker.connect(to: serverEndpoint) as! FakeStreamConnection
        [UInt8]([0, 4, 9, 9, 9, 9]).withUnsafeBytes { _ = try? hostile.write($0) }
        try pump([pair.server])
        #expect(hostile.peerClosed)
        #expect(pair.server.log.contains("invalid"))
    }

    /// Connections that never speak hold their slot for ever: 256 idle connections (the
    /// default maximumConnections) make the server refuse the real client's reconnect. An
    /// unauthenticated connection needs an idle timeout, or the oldest silent one should be
    /// evicted for a newcomer. (The attacker uses 32 addresses, 8 connections each: the most
    /// the per-source cap lets one address hold.)
    @Test func idleConnectionsCannotLockOutTheClient() throws {
        let pair = try DaemonPair.tcp()
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [up])

        let attackers = (0..<32).map {
            FakeStreamDialer(network: pair.streams, localAddress: Endpoint(ipv4: 203, 0, 113, UInt8($0 + 1), port: 0))
        }
        // The connection breaks; before the client's first redial (250 ms later) the attacker has
        // taken every slot.
        pair.dialer.dialled[0].reset()
        try pump([pair.client, pair.server])
        for attacker in attackers { for _ in 0..<8 { _ = try attacker.connect(to: serverEndpoint) } }
        try pump([pair.server])
        #expect(pair.listener.accepted.count == 257)
        for _ in 0..<5 where pair.dialer.attempts.count < 2 {
            try pair.client.dataPlane.runOnce(timeoutCap: .seconds(10))
        }
        pair.server.manualClock.advance(by: .seconds(60))
        try pump([pair.client, pair.server])
        let again = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(2))
        pair.client.device.inject(again)
        try pump([pair.client, pair.server])
        #expect(pair.server.log.contains("closing the oldest unauthenticated one"))
        #expect(pair.server.device.takeWritten() == [again])
    }
}
