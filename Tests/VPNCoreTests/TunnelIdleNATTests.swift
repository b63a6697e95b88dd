// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// An idle client behind NAT: its persistent keepalives must keep a session, and so its NAT
/// mapping, for good (wireguard-go sends a keepalive like any other packet: rekey-on-send after
/// it, a staged keepalive and a handshake when no key is usable).
@Suite("Tunnel: an idle peer with PersistentKeepalive keeps its session")
struct TunnelIdleNATTests {
    let b = TwoPeerSimulator.endpointB

    @Test("30 idle minutes with PersistentKeepalive = 25: a rekey every ~2 minutes, the responder can always send")
    func idleClientRekeys() {
        var options = TwoPeerOptions()
        options.persistentKeepaliveAtB = .seconds(25)
        let sim = TwoPeerSimulator(options)
        sim.connect()
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))
        let start = sim.now
        for second in 1...1800 {
            sim.run(until: start + .seconds(second))
            if !sim.a.hasSession(sim.now) {
                Issue.record("the responder has no usable session \(second) s into the idle period")
                return
            }
        }
        let initiations = sim.network.log.filter { $0.messageType == .initiation && $0.source == b }.map(\.sentAt)
        // The first initiation is the connect; the rest are rekeys by the idle client.
        let rekeys = Array(initiations.dropFirst())
        #expect((13...16).contains(rekeys.count), "rekeys in 30 idle minutes: \(rekeys.count)")
        var previous = initiations.first!
        for at in rekeys {
            let gap = at - previous
            #expect(gap > .seconds(120) && gap <= .seconds(150), "gap between rekeys: \(gap)")
            previous = at
        }
        // And the responder's packet gets through at the end.
        #expect({ if case .send = sim.sendData(from: .a, payload: [1, 2, 3]) { return true } else { return false } }())
        sim.run(for: .milliseconds(10))
        #expect(sim.b.deliveredPayloads.count == 1)
    }

    @Test("a keepalive due with no usable key stages an empty packet and starts a handshake")
    func keepaliveWithoutKeyHandshakes() {
        var options = TwoPeerOptions()
        options.persistentKeepaliveAtB = .seconds(25)
        let sim = TwoPeerSimulator(options)
        sim.connect()
        // A goes away for 4 minutes: B's session expires (180 s) while it keeps trying.
        sim.network.filter = { _ in false }
        sim.run(for: .seconds(240))
        #expect(!sim.b.hasSession(sim.now))
        sim.network.filter = nil
        // The next persistent keepalive must make a session on its own, with no data sent.
        sim.run(for: .seconds(30))
        #expect(sim.b.hasSession(sim.now) && sim.a.hasSession(sim.now))
        #expect({ if case .send = sim.sendData(from: .a, payload: [7]) { return true } else { return false } }())
    }
}
