// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCore
import VPNCrypto
import VPNTesting

/// The handshake counters behind `vpnd doctor`: initiations sent, answered, unanswered, responses
/// received, and the unknown keys a responder remembers.
@Suite("Tunnel: handshake counters")
struct TunnelHandshakeCounterTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB

    @Test("a working pair: one initiation sent and answered, one response received, nothing unanswered")
    func workingPair() {
        let sim = TwoPeerSimulator()
        sim.connect()
        let client = sim.b.peerStatus(sim.now)
        #expect(client.endpointConfigured)
        #expect(client.initiationsSent == 1 && client.responsesReceived == 1)
        #expect(client.initiationsUnanswered == 0 && client.initiationsUnansweredInARow == 0)
        #expect(client.initiationsAnswered == 0)
        let server = sim.a.peerStatus(sim.now)
        #expect(!server.endpointConfigured)
        #expect(server.initiationsAnswered == 1 && server.initiationsSent == 0 && server.responsesReceived == 0)
        #expect(server.handshakes == 1)
        #expect(sim.a.tunnel.status(now: sim.now).mtu == 1420)
        #expect(sim.a.tunnel.status(now: sim.now).unknownInitiators.isEmpty)
    }

    @Test("a lost response: the retry timer counts the first initiation unanswered; the answer to the second resets the run")
    func lostResponse() {
        let sim = TwoPeerSimulator()
        var dropped = false
        sim.network.filter = { datagram in
            if !dropped && datagram.messageType == .response {
                dropped = true
                return false
            }
            return true
        }
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(4))
        var client = sim.b.peerStatus(sim.now)
        #expect(client.initiationsSent == 1 && client.initiationsUnanswered == 0, "not yet: the retry timer has not fired")
        sim.run(for: .seconds(8))
        client = sim.b.peerStatus(sim.now)
        #expect(client.initiationsSent == 2 && client.responsesReceived == 1)
        #expect(client.initiationsUnanswered == 1 && client.initiationsUnansweredInARow == 0)
        #expect(sim.a.peerStatus(sim.now).initiationsAnswered == 2)
        #expect(sim.b.hasSession(sim.now))
    }

    @Test("an unreachable server: every initiation of the round counts unanswered, the last one at the give-up")
    func unreachable() {
        let sim = TwoPeerSimulator()
        sim.network.filter = { _ in false }
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(12))
        var client = sim.b.peerStatus(sim.now)
        #expect(client.initiationsSent == 3 && client.initiationsUnanswered == 2 && client.initiationsUnansweredInARow == 2)
        sim.run(for: .seconds(100))
        client = sim.b.peerStatus(sim.now)
        #expect(client.initiationsSent == 18)
        #expect(client.initiationsUnanswered == 18 && client.initiationsUnansweredInARow == 18)
        #expect(client.responsesReceived == 0 && client.latestHandshake == nil)
        // The path heals: a new round is answered and the run ends; the total stays.
        sim.network.filter = nil
        sim.sendData(from: .b, payload: simPayload(1))
        sim.run(for: .seconds(1))
        client = sim.b.peerStatus(sim.now)
        #expect(client.responsesReceived == 1 && client.initiationsUnansweredInARow == 0 && client.initiationsUnanswered == 18)
    }

    @Test("a wrong public key for the server: mac1 fails there (interface-wide), the client's initiations go unanswered")
    func wrongServerKey() {
        var options = TwoPeerOptions()
        options.bHasWrongPublicKeyForA = true
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(11))
        let server = sim.a.tunnel.status(now: sim.now)
        #expect(server.drops[.invalidMAC1] == 3)
        #expect(server.peers[0].initiationsAnswered == 0)
        #expect(sim.b.peerStatus(sim.now).initiationsUnansweredInARow == 2)
    }

    @Test("different pre-shared keys: the server answers every initiation and none is confirmed; the client counts the responses as handshake-failed")
    func differentPresharedKeys() {
        var options = TwoPeerOptions()
        options.presharedKeyAtA = [UInt8](repeating: 1, count: 32)
        options.presharedKeyAtB = [UInt8](repeating: 2, count: 32)
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(11))
        let server = sim.a.peerStatus(sim.now)
        #expect(server.initiationsAnswered == 3 && server.handshakes == 0 && !server.hasSession)
        let client = sim.b.peerStatus(sim.now)
        #expect(client.drops[.handshakeFailed] == 3 && client.responsesReceived == 0)
        #expect(client.initiationsUnanswered == 2, "a response that does not authenticate answers nothing")
    }

    @Test("a tun client against a tap server: its initiations pass mac1 and do not decrypt there")
    func modeMismatch() {
        var options = TwoPeerOptions()
        options.mode = .tap
        options.bMode = .tun
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(6))
        let server = sim.a.tunnel.status(now: sim.now)
        #expect(server.drops[.handshakeFailed] == 2 && server.drops[.invalidMAC1] == nil)
        #expect(server.peers[0].initiationsAnswered == 0)
    }

    @Test("a client the server has no [Peer] for: the server remembers its public key, source and count")
    func unknownClient() throws {
        var options = TwoPeerOptions()
        options.aKnowsB = false
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(11))
        let server = sim.a.tunnel.status(now: sim.now)
        #expect(server.drops[.unknownPeer] == 3)
        let stranger = try #require(server.unknownInitiators.first)
        #expect(server.unknownInitiators.count == 1)
        #expect(stranger.publicKey == sim.b.tunnel.identity.publicKey)
        #expect(stranger.initiations == 3 && stranger.source == b)
        #expect(stranger.lastSeen > sim.now - .seconds(2) && stranger.lastSeen <= sim.now)
        #expect(sim.a.events.contains(.initiationFromUnknownKey(publicKey: sim.b.tunnel.identity.publicKey, source: b)))
        // Once it is added as a peer it is no stranger: the list forgets it, and its next initiation is answered.
        let request = try UAPISetRequest.parse(
            "public_key=\(Hex.encode(sim.b.tunnel.identity.publicKey.array))\nallowed_ip=10.0.0.2/32\n")
        _ = try sim.a.tunnel.apply(request, now: sim.now)
        #expect(sim.a.tunnel.status(now: sim.now).unknownInitiators.isEmpty)
        sim.run(for: .seconds(6))
        #expect(sim.a.peerStatus(sim.now).initiationsAnswered == 1)
        #expect(sim.b.hasSession(sim.now))
    }

    @Test("the unknown keys kept: the last four distinct ones with counts; a fifth replaces the one heard from longest ago")
    func unknownInitiatorMemory() {
        var memory = UnknownInitiators()
        func key(_ n: UInt8) -> Bytes32 { Bytes32([UInt8](repeating: n, count: 32))! }
        let source = Endpoint(ipv4: 192, 0, 2, 9, port: 1)
        for (i, n) in [1, 2, 3, 4, 1, 2, 4].enumerated() {
            memory.note(key(UInt8(n)), from: source, now: Instant(nanoseconds: UInt64(i + 1) * 1_000_000_000))
        }
        #expect(memory.entries.map(\.initiations) == [2, 2, 1, 2])
        memory.note(key(5), from: Endpoint(ipv4: 192, 0, 2, 10, port: 2), now: Instant(nanoseconds: 10_000_000_000))
        #expect(memory.entries.map(\.publicKey) == [key(1), key(2), key(5), key(4)], "3 was heard from longest ago")
        #expect(memory.entries[2].initiations == 1 && memory.entries[2].source.port == 2)
        #expect(memory.entries.count == UnknownInitiators.capacity)
    }
}
