// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Seeded random mutations of valid handshake messages: every one must be rejected, none may trap.
@Suite("Handshake message mutations")
struct HandshakeMutationTests {
    static let iterations = 10_000

    /// One mutation of `original`, never equal to it.
    static func mutate(_ original: [UInt8], _ rng: inout SeededEntropy) -> [UInt8] {
        while true {
            var bytes = original
            switch rng.next(below: 5) {
            case 0:  // flip 1 to 3 bits
                for _ in 0...rng.next(below: 3) {
                    let bit = Int(rng.next(below: UInt64(bytes.count * 8)))
                    bytes[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
                }
            case 1:  // truncate
                bytes.removeLast(1 + Int(rng.next(below: UInt64(bytes.count))))
            case 2:  // extend with random bytes
                for _ in 0...rng.next(below: 40) { bytes.append(UInt8(truncatingIfNeeded: rng.nextUInt32())) }
            case 3:  // overwrite 1 to 8 random positions
                for _ in 0...rng.next(below: 8) {
                    bytes[Int(rng.next(below: UInt64(bytes.count)))] = UInt8(truncatingIfNeeded: rng.nextUInt32())
                }
            default:  // random bytes of a random length up to 200, keeping the type byte half the time
                let count = Int(rng.next(below: 201))
                bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt32()) }
                if count >= 4 && rng.next(below: 2) == 0 { bytes[0..<4] = original[0..<4] }
            }
            if bytes != original { return bytes }
        }
    }

    @Test("10,000 mutated initiations, responses and cookie replies are all rejected")
    func mutations() throws {
        var entropy = SeededEntropy(seed: 77)
        var pair = HandshakePair(seed: 78, psk: SecretKey(random: &entropy))
        let initiatorAddress = Endpoint(ipv4: 192, 0, 2, 10, port: 5000)
        let responderAddress = Endpoint(ipv4: 192, 0, 2, 20, port: 51820)
        var responderChecker = CookieChecker(identity: pair.responder)
        var initiatorChecker = CookieChecker(identity: pair.initiator)
        var reply = [UInt8](repeating: 0, count: 64)

        // Valid messages that carry mac2, so that every check (mac1, mac2, AEAD) is exercised.
        let (probe, _) = try pair.initiate(index: 1, timestamp: TAI64N(unixSeconds: 1, nanoseconds: 0),
                                           now: .zero, entropy: &entropy)
        #expect(admit(&responderChecker, probe, initiatorAddress, &reply, &entropy) == .sendCookieReply)
        #expect(take(reply, &pair.initiatorJar, .zero) == nil)
        let (initiation, pending) = try pair.initiate(index: 2, timestamp: TAI64N(unixSeconds: 2, nanoseconds: 0),
                                                      now: .zero, entropy: &entropy)
        let consumed = try #require(initiation.withUnsafeBytes {
            pair.responder.consumeInitiation($0, now: .zero, lookupPeer: pair.lookup)
        }.value)
        let (probeResponse, _) = try pair.respond(consumed, index: 3, entropy: &entropy)
        #expect(admit(&initiatorChecker, probeResponse, responderAddress, &reply, &entropy) == .sendCookieReply)
        #expect(take(reply, &pair.responderJar, .zero) == nil)
        let (response, _) = try pair.respond(consumed, index: 4, entropy: &entropy)
        #expect(admit(&responderChecker, initiation, initiatorAddress, &reply, &entropy) == .proceed)
        #expect(admit(&initiatorChecker, response, responderAddress, &reply, &entropy) == .proceed)
        // A cookie reply to the initiator's last message (the initiation above).
        #expect(admit(&responderChecker, probe, initiatorAddress, &reply, &entropy) == .sendCookieReply)
        var replyForInitiation = [UInt8](repeating: 0, count: 64)
        initiation.withUnsafeBytes { m in
            replyForInitiation.withUnsafeMutableBytes {
                responderChecker.writeCookieReply(answering: m, source: initiatorAddress, now: .zero,
                                                  entropy: &entropy, into: $0)
            }
        }
        let cookieReply = replyForInitiation

        // The unmutated messages pass the whole pipeline, so the test can fail.
        #expect(receiveInitiation(initiation, pair, &responderChecker, initiatorAddress, &entropy) == nil)
        #expect(receiveResponse(response, pair, pending, &initiatorChecker, responderAddress, &entropy) == nil)
        var jar = pair.initiatorJar
        #expect(take(cookieReply, &jar, .zero) == nil)

        var rng = SeededEntropy(seed: 0x5EED)
        var rejected = [DropReason: Int]()
        for i in 0..<Self.iterations {
            let reason: DropReason?
            switch i % 3 {
            case 0:
                reason = receiveInitiation(Self.mutate(initiation, &rng), pair, &responderChecker, initiatorAddress,
                                           &entropy)
            case 1:
                reason = receiveResponse(Self.mutate(response, &rng), pair, pending, &initiatorChecker,
                                         responderAddress, &entropy)
            default:
                var jar = pair.initiatorJar
                reason = take(Self.mutate(cookieReply, &rng), &jar, .zero)
            }
            guard let reason else {
                Issue.record("mutation \(i) was accepted")
                continue
            }
            rejected[reason, default: 0] += 1
        }
        #expect(rejected.values.reduce(0, +) == Self.iterations)
        // The rejections come from every layer: framing, mac1, mac2 (cookie replies) and AEAD.
        for reason in [DropReason.truncated, .oversized, .unknownType, .invalidMAC1, .invalidMAC2, .handshakeFailed] {
            #expect(rejected[reason, default: 0] > 0, "no mutation was rejected as \(reason)")
        }
    }

    /// The responder's receive path under load: admission, then the Noise message. nil = accepted.
    private func receiveInitiation(_ message: [UInt8], _ pair: HandshakePair, _ checker: inout CookieChecker,
                                   _ source: Endpoint, _ entropy: inout SeededEntropy) -> DropReason? {
        var reply = [UInt8](repeating: 0, count: 64)
        switch admit(&checker, message, source, &reply, &entropy) {
        case .drop(let reason): return reason
        case .sendCookieReply: return .invalidMAC2
        case .proceed: break
        }
        return message.withUnsafeBytes { pair.responder.consumeInitiation($0, now: .zero, lookupPeer: pair.lookup) }
            .dropReason
    }

    /// The initiator's receive path under load. nil = accepted.
    private func receiveResponse(_ message: [UInt8], _ pair: HandshakePair, _ pending: PendingInitiation,
                                 _ checker: inout CookieChecker, _ source: Endpoint,
                                 _ entropy: inout SeededEntropy) -> DropReason? {
        var reply = [UInt8](repeating: 0, count: 64)
        switch admit(&checker, message, source, &reply, &entropy) {
        case .drop(let reason): return reason
        case .sendCookieReply: return .invalidMAC2
        case .proceed: break
        }
        return message.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.dropReason
    }

    private func admit(_ checker: inout CookieChecker, _ message: [UInt8], _ source: Endpoint, _ reply: inout [UInt8],
                       _ entropy: inout SeededEntropy) -> HandshakeAdmission {
        message.withUnsafeBytes { m in
            reply.withUnsafeMutableBytes {
                checker.admit(m, source: source, underLoad: true, now: .zero, entropy: &entropy, cookieReply: $0)
            }
        }
    }
}
