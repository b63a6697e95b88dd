// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@testable import VPNCore

/// `Cipher = aes256gcm`: sessions between two vpnd ends whose transport data is AES-256-GCM,
/// bound into the handshake by its identifier, with GCM's own message limits.
@Suite("Tunnel: the AES-256-GCM cipher")
struct TunnelCipherTests {
    let a = TwoPeerSimulator.endpointA

    func aesOptions() -> TwoPeerOptions {
        var options = TwoPeerOptions()
        options.cipher = .aes256GCM
        return options
    }

    @Test("each Mode and Cipher pair has its own identifier, and only tun with ChaCha20-Poly1305 is WireGuard's")
    func identifiers() {
        let all = HandshakeIdentity.Mode.allCases.flatMap { mode in TransportCipher.allCases.map { mode.identifier(cipher: $0) } }
        #expect(Set(all).count == 4)
        #expect(HandshakeIdentity.Mode.tun.identifier == "WireGuard v1 zx2c4 Jason@zx2c4.com")
        #expect(HandshakeIdentity.Mode.tun.identifier(cipher: .aes256GCM) != HandshakeIdentity.Mode.tun.identifier)
    }

    @Test("two AES-256-GCM ends exchange data both ways, and the data messages are GCM, not ChaCha20-Poly1305")
    func sessionUsesGCM() throws {
        try #require(AES256GCM.isAvailable)
        let sim = TwoPeerSimulator(aesOptions())
        sim.connect()
        for i in 0..<50 {
            #expect(sim.sendData(from: .b, payload: simPayload(i, count: 20 + i * 17)).isSend)
            #expect(sim.sendData(from: .a, payload: simPayload(500 + i)).isSend)
            sim.run(for: .milliseconds(2))
        }
        #expect(simSequences(sim.a) == Array(0..<50))
        #expect(simSequences(sim.b) == Array(500..<550))
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)

        let peerAtA = try #require(sim.a.tunnel.peers[0])
        let keypair = try #require(peerAtA.slots.current)
        #expect(keypair.cipher == .aes256GCM)
        // The last data message A sent opens with A's send key as AES-256-GCM, and not as ChaCha20-Poly1305.
        let sent = try #require(sim.network.sent(.transportData, from: a).last)
        func opens(_ key: TransportKey) -> Bool {
            let slot = TestSlot()
            return withExtendedLifetime(slot) {
                var buffer = slot.buffer(sent.bytes, headroom: 0)
                var window = ReplayWindow()
                if case .ok = TransportData.open(&buffer, key: key, replay: &window) { return true }
                return false
            }
        }
        #expect(opens(TransportKey(keypair.sendKey.secret, cipher: .aes256GCM)))
        #expect(!opens(TransportKey(keypair.sendKey.secret)))
    }

    @Test("ends with different Ciphers never establish a session: the responder drops the initiation as handshakeFailed",
          arguments: [(TransportCipher.aes256GCM, TransportCipher.chaCha20Poly1305), (.chaCha20Poly1305, .aes256GCM)])
    func mismatch(cipherA: TransportCipher, cipherB: TransportCipher) throws {
        try #require(AES256GCM.isAvailable)
        var options = TwoPeerOptions()
        options.cipher = cipherA
        options.bCipher = cipherB
        let sim = TwoPeerSimulator(options)
        sim.send(.b, sim.dataPacket(from: .b, payload: simPayload(0)))
        sim.run(for: .seconds(30))
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        #expect(!sim.a.drops.isEmpty && sim.a.drops.allSatisfy { $0 == .handshakeFailed })
        #expect(sim.network.sent(.response, from: a).isEmpty)
    }

    @Test("GCM's message limits: timers take the lower limits, and the receiver refuses counters at 2^24")
    func messageLimits() throws {
        try #require(AES256GCM.isAvailable)
        let limited = TimerSettings.wireGuard.limited(to: .aes256GCM)
        #expect(limited.rekeyAfterMessages == 1 << 23 && limited.rejectAfterMessages == 1 << 24)
        #expect(TimerSettings.wireGuard.limited(to: .chaCha20Poly1305) == .wireGuard)
        // Shortened test timers keep their times and take the cipher's message limits.
        let short = TimerSettings.shortened(rekeyAfterTime: .seconds(2)).limited(to: .aes256GCM)
        #expect(short.rekeyAfterTime == .seconds(2) && short.rejectAfterMessages == 1 << 24)

        var entropy = SeededEntropy(seed: 24)
        let key = TransportKey(SecretKey(random: &entropy), cipher: .aes256GCM)
        for (counter, accepted) in [(UInt64(1 << 24) - 1, true), (1 << 24, false), (1 << 40, false)] {
            let slot = TestSlot()
            let result = withExtendedLifetime(slot) { () -> TransportData.OpenResult in
                var buffer = slot.buffer([UInt8](repeating: 0x45, count: 40))
                TransportData.seal(&buffer, receiverIndex: 7, counter: counter, key: key, mtu: 1420)
                var window = ReplayWindow()
                return TransportData.open(&buffer, key: key, replay: &window)
            }
            #expect((result == .ok(counter: counter)) == accepted)
            if !accepted { #expect(result == TransportData.OpenResult.drop(.counterLimit)) }
        }
    }

    @Test("a sender past 2^23 messages starts a new handshake; at 2^24 the key no longer sends")
    func rekeyOnMessageCount() throws {
        try #require(AES256GCM.isAvailable)
        let sim = TwoPeerSimulator(aesOptions())
        sim.connect()
        sim.run(for: .seconds(6))  // past REKEY_TIMEOUT: a new initiation is allowed again
        let peerAtB = try #require(sim.b.tunnel.peers[0])
        let initiationsBefore = sim.network.sent(.initiation, from: TwoPeerSimulator.endpointB).count
        peerAtB.slots.withKeypair(.current) { $0.sendCounter = Spec.aesGCMRekeyAfterMessages }
        #expect(sim.sendData(from: .b, payload: simPayload(1)).isSend)
        sim.run(for: .milliseconds(50))
        #expect(sim.network.sent(.initiation, from: TwoPeerSimulator.endpointB).count == initiationsBefore + 1)
        // The new session starts its counter at 0 and carries data.
        #expect(try #require(peerAtB.slots.current).sendCounter < 10)
        #expect(sim.sendData(from: .b, payload: simPayload(2)).isSend)
        sim.run(for: .milliseconds(10))
        #expect(simSequences(sim.a).suffix(2) == [1, 2])

        peerAtB.slots.withKeypair(.current) { $0.sendCounter = Spec.aesGCMRejectAfterMessages }
        #expect(!sim.sendData(from: .b, payload: simPayload(3)).isSend)
    }
}
