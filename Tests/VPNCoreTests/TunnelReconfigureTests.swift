// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// `set=1` requests applied to a running tunnel (``Tunnel/apply(_:now:)``): runtime peers.
@Suite("Tunnel: runtime configuration changes")
struct TunnelReconfigureTests {
    static func hex(_ key: Bytes32) -> String { Hex.encode(key.array) }
    static func hex(_ key: SecretKey) -> String { key.withUnsafeBytes { Hex.encode($0) } }

    /// Parses and applies `lines` (without the `set=1` line and the blank line) at `side`.
    @discardableResult
    static func set(_ sim: TwoPeerSimulator, _ side: SimulatedSide, _ lines: [String]) throws -> TunnelReconfiguration {
        let request = try UAPISetRequest.parse(lines.map { $0 + "\n" }.joined())
        return try sim.peer(side).tunnel.apply(request, now: sim.now)
    }

    static func newKey(seed: UInt64) -> SecretKey {
        var entropy = SeededEntropy(seed: seed)
        return X25519.generatePrivateKey(using: &entropy)
    }

    @Test("a setconf repeating the running configuration changes nothing: same session, same counters")
    func repeatedConfigurationIsNoChange() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        for i in 0..<10 { _ = sim.sendData(from: .b, payload: simPayload(i)) }
        sim.run(for: .milliseconds(50))
        let before = sim.a.peerStatus(sim.now)
        let result = try Self.set(sim, .a, [
            "private_key=\(Self.hex(sim.privateKeyA))", "replace_peers=true",
            "public_key=\(Self.hex(sim.b.tunnel.identity.publicKey))", "replace_allowed_ips=true",
            "allowed_ip=10.0.0.2/32",
        ])
        #expect(result.isEmpty)
        let after = sim.a.peerStatus(sim.now)
        #expect(after.hasSession && after.handshakes == before.handshakes)
        #expect(after.receivedBytes == before.receivedBytes && after.latestHandshake == before.latestHandshake)
        #expect(sim.sendData(from: .a, payload: simPayload(99)).isSend)
        sim.run(for: .milliseconds(50))
        #expect(simSequences(sim.b) == [99])
        #expect(sim.network.sent(.initiation, from: TwoPeerSimulator.endpointB).count == 1, "no new handshake")
    }

    @Test("AllowedIPs change at once both ways: the old source is refused, the new one routed")
    func allowedIPsChangeLive() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        // Data both ways first: A's route memos (last destination, last source) hold 10.0.0.2 -> B,
        // and the change must not be hidden by them.
        _ = sim.sendData(from: .a, payload: simPayload(0))
        _ = sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .milliseconds(50))
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)
        let result = try Self.set(sim, .a, [
            "public_key=\(Self.hex(sim.b.tunnel.identity.publicKey))", "replace_allowed_ips=true",
            "allowed_ip=10.9.0.0/24",
        ])
        #expect(result.changed == [sim.b.tunnel.identity.publicKey])
        #expect(result.allowedIPsBefore == [IPPrefix("10.0.0.2/32")!])
        #expect(result.allowedIPsAfter == [IPPrefix("10.9.0.0/24")!])
        #expect(sim.a.peerStatus(sim.now).allowedIPs == [IPPrefix("10.9.0.0/24")!])
        // B still sends from 10.0.0.2: no longer allowed at A.
        _ = sim.sendData(from: .b, payload: simPayload(1))
        sim.run(for: .milliseconds(50))
        #expect(sim.a.drops == [.sourceNotAllowed])
        // A routes 10.9.0.7 to B now, and 10.0.0.2 nowhere.
        let routed = sim.send(.a, TestPackets.ipv4(from: IPAddress("10.0.0.1")!, to: IPAddress("10.9.0.7")!, payload: simPayload(2)))
        #expect(routed.isSend)
        let unrouted = sim.send(.a, TestPackets.ipv4(from: IPAddress("10.0.0.1")!, to: IPAddress("10.0.0.2")!, payload: simPayload(3)))
        guard case .drop(.noRoute) = unrouted else {
            Issue.record("expected no route, got \(unrouted)")
            return
        }
        #expect(sim.a.peerStatus(sim.now).hasSession, "the session stays")
    }

    @Test("a removed peer is cut at once; added again, it makes a new session")
    func removeAndAddBack() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let keyB = sim.b.tunnel.identity.publicKey
        let removed = try Self.set(sim, .a, ["public_key=\(Self.hex(keyB))", "remove=true"])
        #expect(removed.removed == [keyB])
        #expect(sim.a.tunnel.status(now: sim.now).peers.isEmpty)
        #expect(sim.sendData(from: .b, payload: simPayload(1)).isSend)  // B still holds its session
        sim.run(for: .milliseconds(50))
        #expect(sim.a.deliveredPayloads.isEmpty)
        #expect(sim.a.tunnel.status(now: sim.now).drops[.unknownReceiverIndex] == 1)

        let added = try Self.set(sim, .a, ["public_key=\(Self.hex(keyB))", "allowed_ip=10.0.0.2/32"])
        #expect(added.added == [keyB])
        #expect(!sim.a.peerStatus(sim.now).hasSession)
        // B's packets go unanswered, so B starts a new handshake (KEEPALIVE + REKEY_TIMEOUT), and
        // A, which knows B again, answers it.
        for i in 2..<40 {
            _ = sim.sendData(from: .b, payload: simPayload(i))
            sim.run(for: .seconds(1))
        }
        #expect(sim.a.peerStatus(sim.now).hasSession)
        #expect(sim.a.peerStatus(sim.now).handshakes == 1, "counters start afresh for a new peer")
        #expect(simSequences(sim.a).contains(39))
    }

    @Test("a new private key drops every session; the peer's next handshake with the old key fails")
    func privateKeyChange() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let fresh = Self.newKey(seed: 900)
        let result = try Self.set(sim, .a, ["private_key=\(Self.hex(fresh))"])
        #expect(result.privateKeyChanged)
        #expect(sim.a.tunnel.identity.publicKey == X25519.publicKey(for: fresh))
        #expect(!sim.a.peerStatus(sim.now).hasSession)
        for i in 0..<30 {
            _ = sim.sendData(from: .b, payload: simPayload(i))
            sim.run(for: .seconds(1))
        }
        #expect(sim.a.deliveredPayloads.isEmpty)
        let drops = sim.a.tunnel.status(now: sim.now).drops
        #expect(drops[.unknownReceiverIndex, default: 0] > 0, "the old session's data")
        #expect(drops[.invalidMAC1, default: 0] > 0, "B's initiations still address the old key")
        // Resending the same key is no change.
        #expect(try Self.set(sim, .a, ["private_key=\(Self.hex(fresh))"]).isEmpty)
        // Cleared: no key to show, no handshake answered.
        #expect(try Self.set(sim, .a, ["private_key=" + String(repeating: "0", count: 64)]).privateKeyChanged)
        #expect(sim.a.tunnel.status(now: sim.now).privateKey == nil)
        sim.run(for: .seconds(20))
        #expect(sim.a.tunnel.status(now: sim.now).drops[.noPrivateKey, default: 0] > 0)
        #expect(sim.network.sent(.response, from: TwoPeerSimulator.endpointA).count == 1, "only the first session's")
    }

    @Test("deferred handshakes: the processor learns a new peer before the initiation that follows it")
    func deferredProcessorLearnsNewPeer() throws {
        var options = TwoPeerOptions()
        options.aKnowsB = false
        options.handshakesAtA = .deferred(capacity: 16)
        let sim = TwoPeerSimulator(options)  // A's processor knows no peer yet
        let added = try Self.set(sim, .a, ["public_key=\(Self.hex(sim.b.tunnel.identity.publicKey))", "allowed_ip=10.0.0.2/32"])
        #expect(added.added.count == 1)
        sim.connect(within: .milliseconds(1))  // B's initiation reaches A
        #expect(sim.handshakeJobs(.a).count == 2)
        sim.completeHandshakes(.a)
        #expect(sim.a.takeSent().map(\.count) == [92], "the server answered with a response")
        #expect(sim.a.tunnel.handshakesInFlight == 0)
    }

    @Test("a refused request changes nothing: a second tap peer")
    func refusedRequestsChangeNothing() throws {
        var options = TwoPeerOptions()
        options.mode = .tap
        let sim = TwoPeerSimulator(options)
        sim.connect()
        let other = X25519.publicKey(for: Self.newKey(seed: 901))
        #expect(throws: UAPIError.self) {
            try Self.set(sim, .a, ["public_key=\(Self.hex(other))", "allowed_ip=10.7.0.0/24"])
        }
        let status = sim.a.tunnel.status(now: sim.now)
        #expect(status.peers.count == 1 && status.peers[0].hasSession)
        // Replacing the one peer in one request is allowed.
        let replaced = try Self.set(sim, .a, ["replace_peers=true", "public_key=\(Self.hex(other))"])
        #expect(replaced.added == [other] && replaced.removed == [sim.b.tunnel.identity.publicKey])
    }

    @Test("a prefix named for another peer moves to it; a peer with our own key is ignored")
    func prefixMovesAndOwnKeyIgnored() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let other = X25519.publicKey(for: Self.newKey(seed: 902))
        let result = try Self.set(sim, .a, [
            "public_key=\(Self.hex(other))", "allowed_ip=10.0.0.2/32",
            "public_key=\(Self.hex(sim.a.tunnel.identity.publicKey))", "allowed_ip=10.5.0.0/16",
        ])
        #expect(result.added == [other])
        let peers = sim.a.tunnel.status(now: sim.now).peers
        #expect(peers.count == 2)
        #expect(peers.first { $0.publicKey == sim.b.tunnel.identity.publicKey }?.allowedIPs == [])
        #expect(peers.first { $0.publicKey == other }?.allowedIPs == [IPPrefix("10.0.0.2/32")!])
    }

    @Test("endpoint and keepalive changes apply to the running peer")
    func endpointAndKeepalive() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let keyA = sim.a.tunnel.identity.publicKey
        try Self.set(sim, .b, ["public_key=\(Self.hex(keyA))", "update_only=true", "persistent_keepalive_interval=5"])
        #expect(sim.b.peerStatus(sim.now).persistentKeepalive == .seconds(5))
        let keepalivesBefore = sim.network.sent(.transportData, from: TwoPeerSimulator.endpointB).count
        sim.run(for: .seconds(11))
        #expect(sim.network.sent(.transportData, from: TwoPeerSimulator.endpointB).count >= keepalivesBefore + 2)
        let elsewhere = Endpoint(ipv4: 192, 0, 2, 99, port: 51820)
        try Self.set(sim, .b, ["public_key=\(Self.hex(keyA))", "endpoint=\(elsewhere)"])
        #expect(sim.b.peerStatus(sim.now).endpoint == elsewhere)
        // update_only for an unknown peer creates nothing.
        let unknown = X25519.publicKey(for: Self.newKey(seed: 903))
        #expect(try Self.set(sim, .b, ["public_key=\(Self.hex(unknown))", "update_only=true", "allowed_ip=10.1.0.0/16"]).isEmpty)
        #expect(sim.b.tunnel.status(now: sim.now).peers.count == 1)
    }

    @Test("the MTU goes down at once and back up to the start MTU, not beyond; the session stays")
    func mtuChangesLive() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let tunnel = sim.a.tunnel
        let start = tunnel.configuration.mtu
        func packet(_ size: Int) -> [UInt8] {
            TestPackets.ipv4(from: IPAddress("10.0.0.1")!, to: IPAddress("10.0.0.2")!, payload: [UInt8](repeating: 7, count: size - 20))
        }
        var lower = UAPISetRequest()
        lower.mtu = 1280
        #expect(try tunnel.apply(lower, now: sim.now).mtu == 1280)
        #expect(tunnel.configuration.mtu == 1280 && sim.a.peerStatus(sim.now).pathMTU == 1280)
        #expect(sim.send(.a, packet(1280)).isSend)
        guard case .drop(.packetTooBig) = sim.send(.a, packet(1281)) else {
            Issue.record("a 1281-byte packet passed an MTU of 1280")
            return
        }
        var above = UAPISetRequest()
        above.mtu = start + 1
        #expect(throws: UAPIError.self) { try tunnel.check(above) }
        #expect(tunnel.configuration.mtu == 1280, "a refused MTU changes nothing")
        var back = UAPISetRequest()
        back.mtu = start
        #expect(try tunnel.apply(back, now: sim.now).mtu == start)
        #expect(sim.a.peerStatus(sim.now).pathMTU == start, "without path probes the size follows at once")
        #expect(sim.send(.a, packet(start)).isSend)
        var same = UAPISetRequest()
        same.mtu = start
        #expect(try tunnel.apply(same, now: sim.now).isEmpty)
        #expect(sim.a.peerStatus(sim.now).hasSession)
        #expect(sim.network.sent(.initiation, from: TwoPeerSimulator.endpointA).count
            + sim.network.sent(.initiation, from: TwoPeerSimulator.endpointB).count == 1, "no new handshake")
    }
}
