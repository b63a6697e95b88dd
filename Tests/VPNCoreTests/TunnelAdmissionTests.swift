// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Handshake admission on real networks: junk must not fake load, a full outbox must not turn
/// a valid initiation into an "invalid mac1".
/// (A responder that just answered starting no crossing handshake: TunnelHandshakeTests.)
@Suite("Tunnel: handshake admission and load")
struct TunnelAdmissionTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB
    let attacker = Endpoint(ipv4: 203, 0, 113, 9, port: 4444)

    @Test("150/s of random type-1 datagrams (no valid mac1) do not put A under load: B's handshake needs no cookie")
    func junkDoesNotFakeLoad() {
        let sim = TwoPeerSimulator()
        var entropy = SeededEntropy(seed: 150)
        // Three seconds of junk at 150/s, then B connects while it goes on.
        for tenth in 0..<40 {
            for _ in 0..<15 {
                sim.network.inject(randomInitiation(&entropy), from: attacker, to: a, at: sim.now)
            }
            if tenth == 30 { sim.b.tunnel.initiateHandshakes(now: sim.now) }
            sim.run(for: .milliseconds(100))
        }
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))
        #expect(sim.network.sent(.cookieReply, from: a).isEmpty, "cookie replies: \(sim.network.sent(.cookieReply, from: a).count)")
        #expect(sim.network.sent(.initiation, from: b).count == 1, "B needed a retry")
        #expect(sim.a.tunnel.status(now: sim.now).drops[.invalidMAC1] == 600)
    }

    @Test("a flood with a valid mac1 still engages the cookie path")
    func validMAC1FloodEngagesCookies() {
        let sim = TwoPeerSimulator()
        var entropy = SeededEntropy(seed: 151)
        flood(sim, count: 100, entropy: &entropy)
        sim.run(for: .milliseconds(1))
        sim.b.tunnel.initiateHandshakes(now: sim.now)
        sim.run(for: .milliseconds(100))
        #expect(sim.network.sent(.cookieReply, from: a).contains { $0.destination == b })
        // B counted the cookie it took (vpnd show: cookie_replies_received), and its session
        // came (handshakes).
        sim.run(for: .seconds(6))
        #expect(sim.b.peerStatus(sim.now).cookieRepliesReceived >= 1)
        #expect(sim.b.peerStatus(sim.now).handshakes == 1)
        #expect(sim.a.tunnel.status(now: sim.now).peers[0].handshakes == 1)
    }

    @Test("with the outbox full, an initiation with valid MACs is not counted as invalid-mac1")
    func fullOutboxKeepsTheVerdict() throws {
        var options = TwoPeerOptions()
        options.outboxCapacity = 4
        let sim = TwoPeerSimulator(options)
        // B's real initiation, taken from its outbox before it reaches the network.
        sim.b.tunnel.initiateHandshakes(now: sim.now)
        var initiation: [UInt8] = []
        sim.b.tunnel.outbox.dequeue { initiation = $0.buffer.byteArray }
        #expect(initiation.count == Spec.initiationSize)
        // Fill A's outbox with cookie replies: 70 valid-mac1 initiations (A goes under load past
        // 64), the outbox never drained.
        var entropy = SeededEntropy(seed: 152)
        var jar = CookieJar(peerPublicKey: sim.a.tunnel.identity.publicKey)
        for _ in 0..<70 {
            var junk = randomInitiation(&entropy)
            junk.withUnsafeMutableBytes { jar.stampMACs($0, now: sim.now) }
            var buffer = sim.supply.buffer(holding: junk, slot: 1, headroom: 0)
            _ = sim.a.tunnel.decapsulate(&buffer, from: attacker, now: sim.now)
        }
        #expect(sim.a.tunnel.outbox.isFull)
        let invalidBefore = sim.a.tunnel.status(now: sim.now).drops[.invalidMAC1] ?? 0
        var buffer = sim.supply.buffer(holding: initiation, slot: 1, headroom: 0)
        let result = sim.a.tunnel.decapsulate(&buffer, from: b, now: sim.now)
        let drops = sim.a.tunnel.status(now: sim.now).drops
        #expect((drops[.invalidMAC1] ?? 0) == invalidBefore, "a valid initiation was counted as invalid-mac1")
        // Under load without mac2: the answer would be a cookie reply, and there is no room for it.
        #expect(result.isDrop(.invalidMAC2))
        #expect((drops[.queueFull] ?? 0) >= 1)
    }
}
