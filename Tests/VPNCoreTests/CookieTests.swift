// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Known answers from python3's hashlib.blake2s (see `WireGuardKAT`): a 148-byte buffer that opens
/// with `01 00 00 00` followed by bytes `(i * 7 + 3) % 256` for i in 4..<116, mac1 keyed with
/// `HASH("mac1----" || responderPublic)`, cookie secret bytes C0...DF, and
/// cookie = `blake2s(address || port little-endian, key: secret, digest_size: 16)`,
/// mac2 = `blake2s(buffer[0..<132], key: cookie, digest_size: 16)`.
enum CookieKAT {
    static let secret = (0xC0...0xDF).map { UInt8($0) }
    static let body: [UInt8] = [1, 0, 0, 0] + (4..<116).map { UInt8(($0 * 7 + 3) % 256) }
    static let mac1 = "a1893c1953be1ea475051757e8601373"
    static let mac2IPv4 = "431af7965c7cbb61cca24a20439338dd"  // 192.0.2.1:51820
    static let mac2IPv6 = "ce6c6315685d81cf1d806547e17dff32"  // [2001:db8::1]:443
}

private let seconds: UInt64 = 1_000_000_000

private func at(_ s: UInt64) -> Instant { Instant(nanoseconds: s * seconds) }

@Suite("Cookies and mac2")
struct CookieTests {
    let source = Endpoint(ipv4: 198, 51, 100, 7, port: 40_000)

    @Test("mac1 and mac2 match python's blake2s, with the address || little-endian port cookie input",
          arguments: [
            (Endpoint(ipv4: 192, 0, 2, 1, port: 51_820), CookieKAT.mac2IPv4),
            (Endpoint(addressBytes: Hex.decode("20010db8000000000000000000000001")!, port: 443), CookieKAT.mac2IPv6),
          ])
    func knownAnswers(source: Endpoint, mac2: String) throws {
        let responder = HandshakeIdentity(privateKey: try secretKey(WireGuardKAT.responderPrivate))
        var jar = CookieJar(peerPublicKey: responder.publicKey)
        var message = CookieKAT.body + [UInt8](repeating: 0xAA, count: 32)
        message.withUnsafeMutableBytes { jar.stampMACs($0, now: at(1)) }
        #expect(Hex.encode(message[116..<132]) == CookieKAT.mac1)
        #expect(Array(message[132..<148]) == [UInt8](repeating: 0, count: 16))

        var checker = CookieChecker(identity: responder)
        #expect(message.withUnsafeBytes { checker.verifyMAC1($0) })
        var entropy = ScriptedEntropy([CookieKAT.secret, [UInt8](repeating: 9, count: 24)])
        var reply = [UInt8](repeating: 0, count: 64)
        message.withUnsafeBytes { m in
            reply.withUnsafeMutableBytes {
                checker.writeCookieReply(answering: m, source: source, now: at(1), entropy: &entropy, into: $0)
            }
        }
        #expect(Array(reply[0..<8]) == [3, 0, 0, 0] + Array(message[4..<8]))
        #expect(Array(reply[8..<32]) == [UInt8](repeating: 9, count: 24))
        #expect(take(reply, &jar, at(2)) == nil)
        message.withUnsafeMutableBytes { jar.stampMACs($0, now: at(2)) }
        #expect(Hex.encode(message[132..<148]) == mac2)
        #expect(message.withUnsafeBytes { checker.verifyMAC2($0, source: source, now: at(3)) })
    }

    @Test("under load: no mac2 → cookie reply; the initiator takes it; the retry with mac2 is accepted")
    func underLoadFlow() throws {
        var entropy = SeededEntropy(seed: 11)
        var pair = HandshakePair(seed: 60)
        var checker = CookieChecker(identity: pair.responder)
        var reply = [UInt8](repeating: 0, count: 64)

        let (first, _) = try pair.initiate(index: 5, timestamp: TAI64N(unixSeconds: 10, nanoseconds: 0), now: at(1),
                                           entropy: &entropy)
        // Not under load, mac2 is not needed.
        #expect(admit(&checker, first, underLoad: false, now: at(1), reply: &reply, entropy: &entropy) == .proceed)
        // Under load, the same message earns a cookie reply addressed to its sender index.
        #expect(admit(&checker, first, underLoad: true, now: at(1), reply: &reply, entropy: &entropy)
            == .sendCookieReply)
        #expect(Wire.classify(reply.withUnsafeBytes { $0 }) == .cookieReply)
        #expect(Array(reply[4..<8]) == [5, 0, 0, 0])
        #expect(!pair.initiatorJar.hasCookie(at: at(1)))
        #expect(take(reply, &pair.initiatorJar, at(1)) == nil)
        #expect(pair.initiatorJar.hasCookie(at: at(1)))

        let (retry, pending) = try pair.initiate(index: 6, timestamp: TAI64N(unixSeconds: 11, nanoseconds: 0),
                                                 now: at(2), entropy: &entropy)
        #expect(Array(retry[132..<148]) != [UInt8](repeating: 0, count: 16), "the retry carries mac2")
        #expect(admit(&checker, retry, underLoad: true, now: at(2), reply: &reply, entropy: &entropy) == .proceed)
        // The cookie is bound to the source: from another port the retry earns a new cookie reply.
        var moved = source
        moved.port += 1
        let fromElsewhere = retry.withUnsafeBytes { m in
            reply.withUnsafeMutableBytes {
                checker.admit(m, source: moved, underLoad: true, now: at(2), entropy: &entropy, cookieReply: $0)
            }
        }
        #expect(fromElsewhere == .sendCookieReply)

        let consumed = try #require(pair.consume(retry, now: at(2)).value)
        let (response, _) = try pair.respond(consumed, now: at(2), entropy: &entropy)
        #expect(response.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.value != nil)
    }

    @Test("cookie replies that do not match our last message are rejected")
    func badCookieReplies() throws {
        var entropy = SeededEntropy(seed: 12)
        var pair = HandshakePair(seed: 61)
        var checker = CookieChecker(identity: pair.responder)
        var reply = [UInt8](repeating: 0, count: 64)
        // A jar that sent nothing cannot take a cookie.
        var fresh = CookieJar(peerPublicKey: pair.responder.publicKey)
        let (first, _) = try pair.initiate(index: 21, now: at(1), entropy: &entropy)
        #expect(admit(&checker, first, underLoad: true, now: at(1), reply: &reply, entropy: &entropy)
            == .sendCookieReply)
        #expect(take(reply, &fresh, at(1)) == .unexpectedHandshake)

        // Flipped ciphertext, flipped nonce, wrong receiver index, type 2 (too short for a response),
        // a non-zero reserved byte.
        for (offset, expected) in [(40, DropReason.handshakeFailed), (10, .handshakeFailed), (4, .unexpectedHandshake),
                                   (0, .truncated), (1, .unknownType)] {
            var bad = reply
            bad[offset] ^= 0x01
            #expect(take(bad, &pair.initiatorJar, at(1)) == expected,
                    "byte \(offset) flipped")
        }
        #expect(take(Array(reply[0..<63]), &pair.initiatorJar, at(1))
            == .truncated)

        // Wrong associated data: the jar has since stamped another message (same sender index), so
        // the reply's AD (the old mac1) no longer matches.
        let (second, _) = try pair.initiate(index: 21, timestamp: TAI64N(unixSeconds: 5_000, nanoseconds: 0),
                                            now: at(1), entropy: &entropy)
        #expect(Array(second[116..<132]) != Array(first[116..<132]))
        #expect(take(reply, &pair.initiatorJar, at(1)) == .handshakeFailed)
        #expect(!pair.initiatorJar.hasCookie(at: at(1)))
        // Failed replies left no trace; a reply to the second message is taken.
        #expect(admit(&checker, second, underLoad: true, now: at(1), reply: &reply, entropy: &entropy)
            == .sendCookieReply)
        #expect(take(reply, &pair.initiatorJar, at(1)) == nil)
    }

    @Test("the cookie secret lasts 120 s; after that old cookies earn a new reply, as in wireguard-go")
    func secretRotation() throws {
        var entropy = SeededEntropy(seed: 13)
        var pair = HandshakePair(seed: 62)
        var checker = CookieChecker(identity: pair.responder)
        var reply = [UInt8](repeating: 0, count: 64)
        var stamp: Int64 = 100
        func next(_ now: Instant) throws -> [UInt8] {
            stamp += 1
            return try pair.initiate(timestamp: TAI64N(unixSeconds: stamp, nanoseconds: 0), now: now,
                                     entropy: &entropy).0
        }

        let t0: UInt64 = 1_000
        #expect(admit(&checker, try next(at(t0)), underLoad: true, now: at(t0), reply: &reply, entropy: &entropy)
            == .sendCookieReply)
        #expect(take(reply, &pair.initiatorJar, at(t0)) == nil)
        let oldCookieMessage = try next(at(t0 + 119))
        #expect(admit(&checker, oldCookieMessage, underLoad: true, now: at(t0 + 119), reply: &reply,
                      entropy: &entropy) == .proceed)
        // 121 s after the secret was made it has expired: the same mac2 is refused...
        #expect(oldCookieMessage.withUnsafeBytes { checker.verifyMAC2($0, source: source, now: at(t0 + 121)) } == false)
        #expect(admit(&checker, oldCookieMessage, underLoad: true, now: at(t0 + 121), reply: &reply,
                      entropy: &entropy) == .sendCookieReply)
        // ...and stays refused under the new secret, which the new reply carries.
        #expect(oldCookieMessage.withUnsafeBytes { checker.verifyMAC2($0, source: source, now: at(t0 + 121)) } == false)
        // The jar's own cookie is still within its 120 s, so it would keep sending the stale mac2;
        // the reply to its last message replaces it.
        let stale = try next(at(t0 + 119))
        #expect(admit(&checker, stale, underLoad: true, now: at(t0 + 122), reply: &reply, entropy: &entropy)
            == .sendCookieReply)
        #expect(take(reply, &pair.initiatorJar, at(t0 + 122)) == nil)
        let renewed = try next(at(t0 + 122))
        #expect(admit(&checker, renewed, underLoad: true, now: at(t0 + 122), reply: &reply, entropy: &entropy)
            == .proceed)
    }

    @Test("a received cookie keys mac2 for 120 s, then mac2 is zero again")
    func jarExpiry() throws {
        var entropy = SeededEntropy(seed: 14)
        var pair = HandshakePair(seed: 63)
        var checker = CookieChecker(identity: pair.responder)
        var reply = [UInt8](repeating: 0, count: 64)
        let (first, _) = try pair.initiate(now: at(10), entropy: &entropy)
        _ = admit(&checker, first, underLoad: true, now: at(10), reply: &reply, entropy: &entropy)
        #expect(take(reply, &pair.initiatorJar, at(10)) == nil)
        #expect(pair.initiatorJar.hasCookie(at: at(130)))
        #expect(!pair.initiatorJar.hasCookie(at: at(131)))
        let (late, _) = try pair.initiate(timestamp: TAI64N(unixSeconds: 9_999, nanoseconds: 0), now: at(131),
                                          entropy: &entropy)
        #expect(Array(late[132..<148]) == [UInt8](repeating: 0, count: 16))
    }

    @Test("admission refuses malformed messages before any MAC")
    func admissionFraming() {
        var entropy = SeededEntropy(seed: 15)
        var checker = CookieChecker(identity: HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy)))
        var reply = [UInt8](repeating: 0, count: 64)
        #expect(admit(&checker, [1, 0, 0, 0] + [UInt8](repeating: 0, count: 100), underLoad: true, now: .zero,
                      reply: &reply, entropy: &entropy) == .drop(.truncated))
        #expect(admit(&checker, [3, 0, 0, 0] + [UInt8](repeating: 0, count: 60), underLoad: true, now: .zero,
                      reply: &reply, entropy: &entropy) == .drop(.unknownType))
        #expect(admit(&checker, [1, 0, 0, 0] + [UInt8](repeating: 0, count: 144), underLoad: true, now: .zero,
                      reply: &reply, entropy: &entropy) == .drop(.invalidMAC1))
        #expect(admit(&checker, [], underLoad: false, now: .zero, reply: &reply, entropy: &entropy)
            == .drop(.truncated))
    }

    private func admit(_ checker: inout CookieChecker, _ message: [UInt8], underLoad: Bool, now: Instant,
                       reply: inout [UInt8], entropy: inout SeededEntropy) -> HandshakeAdmission {
        message.withUnsafeBytes { m in
            reply.withUnsafeMutableBytes {
                checker.admit(m, source: source, underLoad: underLoad, now: now, entropy: &entropy, cookieReply: $0)
            }
        }
    }
}

/// Hands `reply` to `jar` (outside `#expect`, whose expansion cannot call mutating members).
func take(_ reply: [UInt8], _ jar: inout CookieJar, _ now: Instant) -> DropReason? {
    reply.withUnsafeBytes { jar.consumeCookieReply($0, now: now) }
}
