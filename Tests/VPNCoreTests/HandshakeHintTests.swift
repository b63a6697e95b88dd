// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

/// The early hint an initiator logs when its configured peer never answers validly.
@Suite struct HandshakeHintTests {
    static func isHint(_ event: TunnelEvent) -> Bool {
        if case .noResponseYet(_, let waited) = event { return waited == .seconds(5) }
        return false
    }

    @Test("a wrong PublicKey for the responder (mac1 fails there, silently): the initiator hints once, at its first retry")
    func wrongPublicKeyHintsAtFirstRetry() {
        var options = TwoPeerOptions()
        options.bHasWrongPublicKeyForA = true
        let sim = TwoPeerSimulator(options)
        _ = sim.sendData(from: .b, payload: TestPackets.numberedPayload(0))
        sim.run(for: .seconds(4))
        #expect(!sim.b.events.contains(where: Self.isHint))
        sim.run(for: .seconds(2))
        let hints = sim.b.events.filter(Self.isHint)
        #expect(hints.count == 1)  // about the (wrong) key B has for A
        sim.run(for: .seconds(80))
        #expect(sim.b.events.filter(Self.isHint).count == 1, "once per handshake round")
        #expect(!sim.a.events.contains(where: Self.isHint))
    }

    @Test("a working pair, or a lost initiation after a session existed, gives no hint")
    func noHintOnceASessionExisted() {
        let sim = TwoPeerSimulator()
        _ = sim.sendData(from: .b, payload: TestPackets.numberedPayload(0))
        sim.run(for: .seconds(1))
        #expect(sim.b.hasSession(sim.now))
        sim.network.filter = { _ in false }  // A becomes unreachable
        sim.run(for: .seconds(200))
        _ = sim.sendData(from: .b, payload: TestPackets.numberedPayload(1))
        sim.run(for: .seconds(30))
        #expect(!sim.b.events.contains(where: Self.isHint))
    }
}
