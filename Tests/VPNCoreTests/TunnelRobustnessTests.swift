// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Puts A under load: `count` 148-byte "initiations" from addresses of 198.18.0.0/16, random but
/// with a valid mac1 for A (the sender knows A's public key), so they count towards the
/// initiation rate (whitepaper 5.3) and fail later, at the Diffie-Hellman step.
func flood(_ sim: TwoPeerSimulator, count: Int, entropy: inout SeededEntropy) {
    var jar = CookieJar(peerPublicKey: sim.a.tunnel.identity.publicKey)
    for i in 0..<count {
        var junk = randomInitiation(&entropy)
        junk.withUnsafeMutableBytes { jar.stampMACs($0, now: sim.now) }
        let source = Endpoint(ipv4: 198, 18, UInt8(i / 250), UInt8(i % 250 + 1), port: 9999)
        sim.network.inject(junk, from: source, to: TwoPeerSimulator.endpointA, at: sim.now)
    }
}

/// `01 00 00 00` and 144 random bytes: what anyone can send without knowing a key.
func randomInitiation(_ entropy: inout SeededEntropy) -> [UInt8] {
    var junk = [UInt8](repeating: 0, count: Spec.initiationSize)
    junk.withUnsafeMutableBytes { entropy.fill($0) }
    junk[0] = 1
    junk[1] = 0
    junk[2] = 0
    junk[3] = 0
    return junk
}

/// Changes `message` in one of several ways (bit flips, byte overwrite, truncation, extension,
/// a random run); the result always differs from the original.
private func mutate(_ message: [UInt8], _ entropy: inout SeededEntropy, maximumCount: Int) -> [UInt8] {
    var out = message
    switch entropy.next(below: 6) {
    case 0:  // flip 1 to 8 bits
        for _ in 0...entropy.next(below: 8) {
            let i = Int(entropy.next(below: UInt64(out.count)))
            out[i] ^= UInt8(1) << UInt8(entropy.next(below: 8))
        }
    case 1:  // overwrite one byte
        let i = Int(entropy.next(below: UInt64(out.count)))
        out[i] = out[i] &+ UInt8(1 + entropy.next(below: 255))
    case 2:  // truncate
        out.removeLast(1 + Int(entropy.next(below: UInt64(out.count))))
    case 3:  // extend
        let extra = 1 + Int(entropy.next(below: UInt64(max(1, min(64, maximumCount - out.count)))))
        for _ in 0..<extra { out.append(UInt8(truncatingIfNeeded: entropy.nextUInt32())) }
    case 4:  // a run of random bytes
        let start = Int(entropy.next(below: UInt64(out.count)))
        let length = 1 + Int(entropy.next(below: UInt64(min(16, out.count - start))))
        for i in start..<(start + length) { out[i] = UInt8(truncatingIfNeeded: entropy.nextUInt32()) }
    default:  // the type byte or the reserved bytes
        let i = Int(entropy.next(below: 4))
        out[i] = out[i] &+ UInt8(1 + entropy.next(below: 255))
    }
    if out == message { out[0] ^= 0x80 }
    return out
}

@Suite("Tunnel: hostile input and load")
struct TunnelRobustnessTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB

    enum Kind: String, CaseIterable, Sendable { case initiation, response, cookieReply, data, keepalive }

    @Test("10,000 random mutations of a valid message are all rejected without a crash", arguments: Kind.allCases)
    func mutations(kind: Kind) throws {
        let sim = TwoPeerSimulator(TwoPeerOptions())
        var entropy = SeededEntropy(seed: 0xB00 &+ UInt64(kind.rawValue.count))
        if kind == .cookieReply {
            // A under load answers B's first initiation with a cookie reply.
            flood(sim, count: 100, entropy: &entropy)
            sim.run(for: .milliseconds(1))
        }
        sim.connect(within: .seconds(7))
        sim.sendData(from: .b, payload: simPayload(1, count: 300))
        sim.run(for: .milliseconds(10))
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))

        // A message of the kind that was accepted once already, and who received it.
        let original: Datagram
        let target: SimulatedSide
        switch kind {
        case .initiation:
            original = try #require(sim.network.sent(.initiation, from: b).last)
            target = .a
        case .response:
            original = try #require(sim.network.sent(.response, from: a).last)
            target = .b
        case .cookieReply:
            original = try #require(sim.network.sent(.cookieReply, from: a).first { $0.destination == b })
            target = .b
        case .data:
            original = try #require(sim.network.sent(.transportData, from: b).last { $0.bytes.count > 32 })
            target = .a
        case .keepalive:
            original = try #require(sim.network.sent(.transportData, from: b).first { $0.bytes.count == 32 })
            target = .a
        }
        let delivered = sim.peer(target).delivered.count
        var accepted: [[UInt8]] = []
        var reasons: [DropReason: Int] = [:]
        for _ in 0..<10_000 {
            let bytes = mutate(original.bytes, &entropy, maximumCount: sim.supply.mtu + 32)
            switch sim.receive(target, bytes, from: original.source) {
            case .drop(let reason): reasons[reason, default: 0] += 1
            case .deliver, .consumed: accepted.append(bytes)
            }
        }
        #expect(accepted.isEmpty, "\(accepted.count) mutated \(kind) messages were accepted")
        // The mutations reached several layers: framing, MACs or indexes, and the cryptography.
        #expect(reasons.count >= 3, "drop reasons: \(reasons)")
        #expect(reasons.values.reduce(0, +) == 10_000)
        #expect(sim.peer(target).delivered.count == delivered)
        // The session survived it all.
        sim.network.filter = nil
        sim.sendData(from: .b, payload: simPayload(2))
        sim.sendData(from: .a, payload: simPayload(3))
        sim.run(for: .milliseconds(10))
        #expect(simSequences(sim.a).last == 2 && simSequences(sim.b).last == 3)
        #expect(sim.a.peerStatus(sim.now).endpoint == b)
    }

    @Test("under load A answers with a cookie; B's retry carries mac2 and gets a session; floods are rate-limited")
    func cookiePathUnderLoad() throws {
        let sim = TwoPeerSimulator()
        var entropy = SeededEntropy(seed: 77)
        let start = sim.now
        // 100 valid-mac1 initiations every 500 ms keep A under load (more than 64 per second).
        flood(sim, count: 100, entropy: &entropy)
        sim.run(for: .milliseconds(1))
        sim.sendData(from: .b, payload: simPayload(0))
        while sim.now < start + .seconds(8) {
            sim.run(for: .milliseconds(500))
            flood(sim, count: 100, entropy: &entropy)
        }
        sim.run(for: .milliseconds(100))

        let cookieReplies = sim.network.sent(.cookieReply, from: a).filter { $0.destination == b }
        #expect(cookieReplies.count == 1)
        let initiations = sim.network.sent(.initiation, from: b)
        #expect(initiations.count == 2)
        guard initiations.count == 2 else { return }
        #expect(initiations[0].bytes[132..<148].allSatisfy { $0 == 0 }, "no cookie yet: mac2 is zero")
        #expect(!initiations[1].bytes[132..<148].allSatisfy { $0 == 0 }, "the retry carries mac2")
        #expect(cookieReplies[0].index4 == initiations[0].index4)
        // The flood passes mac1: each message got a cookie reply (counted invalid-mac2) or failed
        // at the Diffie-Hellman step; none counts as invalid-mac1.
        #expect(sim.a.drops.filter { $0 == .invalidMAC1 }.isEmpty)
        #expect(sim.a.drops.filter { $0 == .invalidMAC2 }.count == sim.network.sent(.cookieReply, from: a).count)
        #expect(sim.b.consumedCount >= 2, "cookie reply and response consumed")
        #expect(simSequences(sim.a) == [0])
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))

        // Still under load: the same (authentic, mac2-carrying) initiation replayed from B's
        // address is rate-limited after the burst, and never accepted.
        flood(sim, count: 100, entropy: &entropy)
        sim.run(for: .milliseconds(1))
        var reasons: [DropReason] = []
        for _ in 0..<20 {
            if case .drop(let reason) = sim.receive(.a, initiations[1].bytes, from: b) { reasons.append(reason) }
        }
        #expect(reasons.count == 20)
        #expect(reasons.contains(.rateLimited))
        #expect(reasons.allSatisfy { $0 == .rateLimited || $0 == .staleTimestamp })
        // Without load, an initiation needs no mac2.
        sim.run(for: .seconds(3))
        #expect(sim.receive(.a, initiations[0].bytes, from: b).isDrop(.staleTimestamp))
    }

    @Test("garbage of every length is dropped with a reason, never a crash")
    func garbage() {
        let sim = TwoPeerSimulator()
        sim.connect()
        var entropy = SeededEntropy(seed: 3)
        for length in 0..<1500 {
            var bytes = [UInt8](repeating: 0, count: length)
            bytes.withUnsafeMutableBytes { entropy.fill($0) }
            if length >= 4 && length % 3 == 0 {
                bytes[0] = UInt8(1 + length % 4)
                bytes[1] = 0
                bytes[2] = 0
                bytes[3] = 0
            }
            #expect(sim.receive(.a, bytes, from: b).isDrop)
            #expect(sim.receive(.b, bytes, from: a).isDrop)
        }
        #expect(sim.a.peerStatus(sim.now).endpoint == b)
    }
}
