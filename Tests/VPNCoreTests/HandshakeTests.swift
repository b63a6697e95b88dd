// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Known answers from an independent implementation of whitepaper 5.4 in python3 (hashlib.blake2s,
/// hmac, and the `cryptography` package's X25519 and ChaCha20Poly1305), run once by hand:
/// static keys 01..20 (initiator) and 65..84 (responder), ephemerals 0x42 × 32 and 0x24 × 32,
/// PSK 0x77 × 32, sender indexes 0x11223344 / 0xA1B2C3D4, TAI64N label 2^62 + 10 + 1700000000
/// with 123 << 24 nanoseconds; no cookie (mac2 zero).
enum WireGuardKAT {
    static let initiatorPrivate = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
    static let responderPrivate = "65666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f8081828384"
    static let initiatorPublic = "07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c"
    static let responderPublic = "5714769d116bf76436ae74bc793d2c30ad1903c59ac5273805c7e2698b410c36"
    static let initiatorEphemeral = [UInt8](repeating: 0x42, count: 32)
    static let responderEphemeral = [UInt8](repeating: 0x24, count: 32)
    static let psk = [UInt8](repeating: 0x77, count: 32)
    static let initiatorIndex: UInt32 = 0x1122_3344
    static let responderIndex: UInt32 = 0xA1B2_C3D4
    static let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 123 << 24 | 5_000)
    static let initiation = """
        0100000044332211132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f4721805b0d3088351\
        0910d79ef5e2b2228627899f4f2147015871cba9ed975648a54ccbb2c86cb9c70dd1e5fad9bdd0408defb8db9f8222\
        8f5f1a9ddae2f35fa7f57943f45014ecabcae446b62d1cc05b4a4abb93d9a68f611a14bb202f000000000000000000\
        00000000000000
        """
    static let response = """
        02000000d4c3b2a14433221104bcd2e0d00f2cce5fe8f1c6c2fbec5c07fa56e3aa5c88a5689975d88b3fce05ab8c06\
        86faf6ed6520d517e086904105cfed14876e34ee80bdce5b0d2563741500000000000000000000000000000000
        """
    static let initiatorSend = "a01629c7197e3f1de97e02e551fa43ef029b2272a33608d01ac5be5fd68f618f"
    static let initiatorReceive = "f84092f39e5d177ae6379375e5114d10ea2f7e5a0ca3943a0f1f833e5b9e6e9b"
    static let mac1KeyResponder = "842907ad37f449e78d3aeb4492cc9b8184b94c9b92bf157718b4a106182a7a18"
    static let cookieKeyResponder = "088c15942d8e1a930a15069ead34facac74890e98829c2a685887499b1dc3df0"
}

/// Two in-memory identities and their view of each other: the fixture below Tunnel, for the
/// Noise messages, cookies and mac checks themselves (Tunnel behaviour: ``TwoPeerSimulator``).
struct HandshakePair {
    var initiator: HandshakeIdentity
    var responder: HandshakeIdentity
    var peerOfInitiator: PeerHandshakeInfo  // how the initiator knows the responder
    var peerOfResponder: PeerHandshakeInfo  // how the responder knows the initiator
    var initiatorJar: CookieJar
    var responderJar: CookieJar

    init(seed: UInt64, psk: SecretKey? = nil, initiatorMode: HandshakeIdentity.Mode = .tun,
         responderMode: HandshakeIdentity.Mode = .tun) {
        var entropy = SeededEntropy(seed: seed)
        initiator = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy), mode: initiatorMode)
        responder = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy), mode: responderMode)
        peerOfInitiator = PeerHandshakeInfo(publicKey: responder.publicKey, presharedKey: psk)
        peerOfResponder = PeerHandshakeInfo(publicKey: initiator.publicKey, presharedKey: psk)
        initiatorJar = CookieJar(peerPublicKey: responder.publicKey)
        responderJar = CookieJar(peerPublicKey: initiator.publicKey)
    }

    /// Makes an initiation; returns its bytes and the pending state.
    mutating func initiate(index: UInt32 = 7, timestamp: TAI64N = TAI64N(unixSeconds: 1_000, nanoseconds: 0),
                           now: Instant = .zero, entropy: inout SeededEntropy) throws -> ([UInt8], PendingInitiation) {
        var message = [UInt8](repeating: 0xEE, count: Spec.initiationSize)
        let pending = try message.withUnsafeMutableBytes {
            try initiator.createInitiation(peer: peerOfInitiator, localIndex: index, timestamp: timestamp,
                                           cookieJar: &initiatorJar, now: now, entropy: &entropy, into: $0)
        }
        return (message, pending)
    }

    /// The responder's lookup: knows only the initiator.
    func lookup(_ key: Bytes32) -> PeerHandshakeInfo? {
        key == peerOfResponder.publicKey ? peerOfResponder : nil
    }

    /// Consumes an initiation at the responder and records its replay state on success.
    mutating func consume(_ message: [UInt8], now: Instant = .zero) -> HandshakeResult<ConsumedInitiation> {
        let result = message.withUnsafeBytes { responder.consumeInitiation($0, now: now, lookupPeer: lookup) }
        if case .accepted(let consumed) = result {
            peerOfResponder.lastTimestamp = consumed.timestamp
            peerOfResponder.lastInitiationAt = now
        }
        return result
    }

    /// Writes the response; returns its bytes and the responder's keys.
    mutating func respond(_ consumed: ConsumedInitiation, index: UInt32 = 9, now: Instant = .zero,
                          entropy: inout SeededEntropy) throws -> ([UInt8], SessionKeys) {
        var message = [UInt8](repeating: 0xEE, count: Spec.responseSize)
        let result = message.withUnsafeMutableBytes {
            responder.createResponse(to: consumed, localIndex: index, cookieJar: &responderJar, now: now,
                                     entropy: &entropy, into: $0)
        }
        return (message, try #require(result.value))
    }
}

@Suite("WireGuard handshake")
struct HandshakeTests {
    @Test("byte for byte against an independent implementation of whitepaper 5.4")
    func knownAnswer() throws {
        let initiator = HandshakeIdentity(privateKey: try secretKey(WireGuardKAT.initiatorPrivate))
        let responder = HandshakeIdentity(privateKey: try secretKey(WireGuardKAT.responderPrivate))
        #expect(initiator.publicKey.description == WireGuardKAT.initiatorPublic)
        #expect(responder.publicKey.description == WireGuardKAT.responderPublic)
        #expect(responder.mac1Key.description == WireGuardKAT.mac1KeyResponder)
        #expect(responder.cookieKey.description == WireGuardKAT.cookieKeyResponder)
        let psk = try #require(SecretKey(WireGuardKAT.psk))

        var initEntropy = ScriptedEntropy([WireGuardKAT.initiatorEphemeral])
        var jarI = CookieJar(peerPublicKey: responder.publicKey)
        var initiation = [UInt8](repeating: 0, count: 148)
        let pending = try initiation.withUnsafeMutableBytes {
            try initiator.createInitiation(
                peer: PeerHandshakeInfo(publicKey: responder.publicKey, presharedKey: psk),
                localIndex: WireGuardKAT.initiatorIndex, timestamp: WireGuardKAT.timestamp, cookieJar: &jarI,
                now: .zero, entropy: &initEntropy, into: $0)
        }
        #expect(Hex.encode(initiation) == WireGuardKAT.initiation)

        let consumed = try #require(initiation.withUnsafeBytes {
            responder.consumeInitiation($0, now: .zero) { key in
                key == initiator.publicKey ? PeerHandshakeInfo(publicKey: key, presharedKey: psk) : nil
            }
        }.value)
        #expect(consumed.timestamp == WireGuardKAT.timestamp)
        #expect(consumed.remoteIndex == WireGuardKAT.initiatorIndex)
        var respEntropy = ScriptedEntropy([WireGuardKAT.responderEphemeral])
        var jarR = CookieJar(peerPublicKey: initiator.publicKey)
        var response = [UInt8](repeating: 0, count: 92)
        let responderKeys = try #require(response.withUnsafeMutableBytes {
            responder.createResponse(to: consumed, localIndex: WireGuardKAT.responderIndex, cookieJar: &jarR,
                                     now: .zero, entropy: &respEntropy, into: $0)
        }.value)
        #expect(Hex.encode(response) == WireGuardKAT.response)

        let initiatorKeys = try #require(response.withUnsafeBytes { initiator.consumeResponse($0, pending: pending) }.value)
        #expect(Hex.encode(initiatorKeys.sendKey.exposedBytes()) == WireGuardKAT.initiatorSend)
        #expect(Hex.encode(initiatorKeys.receiveKey.exposedBytes()) == WireGuardKAT.initiatorReceive)
        #expect(Hex.encode(responderKeys.receiveKey.exposedBytes()) == WireGuardKAT.initiatorSend)
        #expect(Hex.encode(responderKeys.sendKey.exposedBytes()) == WireGuardKAT.initiatorReceive)
    }

    @Test("two identities complete a handshake with matching keys and WireGuard's field layout",
          arguments: [false, true])
    func fullHandshake(withPSK: Bool) throws {
        var entropy = SeededEntropy(seed: 1)
        var pair = HandshakePair(seed: 42, psk: withPSK ? SecretKey(random: &entropy) : nil)
        let (initiation, pending) = try pair.initiate(index: 0xDEAD_BEEF, entropy: &entropy)
        #expect(initiation.count == 148)
        #expect(Array(initiation[0..<4]) == [1, 0, 0, 0])
        #expect(Array(initiation[4..<8]) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(Array(initiation[8..<40]) != Array(repeating: 0xEE, count: 32))
        #expect(Array(initiation[132..<148]) == Array(repeating: 0, count: 16), "no cookie: mac2 is zero")
        #expect(Wire.classify(initiation.withUnsafeBytes { $0 }) == .initiation)

        let consumed = try #require(pair.consume(initiation).value)
        #expect(consumed.peerPublicKey == pair.initiator.publicKey)
        #expect(consumed.remoteIndex == 0xDEAD_BEEF)
        let (response, responderKeys) = try pair.respond(consumed, index: 0x0102_0304, entropy: &entropy)
        #expect(response.count == 92)
        #expect(Array(response[0..<4]) == [2, 0, 0, 0])
        #expect(Array(response[4..<8]) == [4, 3, 2, 1])
        #expect(Array(response[8..<12]) == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(Array(response[76..<92]) == Array(repeating: 0, count: 16))

        let initiatorKeys = try #require(response.withUnsafeBytes {
            pair.initiator.consumeResponse($0, pending: pending)
        }.value)
        #expect(initiatorKeys.sendKey.constantTimeEquals(responderKeys.receiveKey))
        #expect(initiatorKeys.receiveKey.constantTimeEquals(responderKeys.sendKey))
        #expect(!initiatorKeys.sendKey.constantTimeEquals(initiatorKeys.receiveKey))
        #expect(initiatorKeys.isInitiator && !responderKeys.isInitiator)
        #expect(initiatorKeys.localIndex == 0xDEAD_BEEF && initiatorKeys.remoteIndex == 0x0102_0304)
        #expect(responderKeys.localIndex == 0x0102_0304 && responderKeys.remoteIndex == 0xDEAD_BEEF)
        #expect(initiatorKeys.remoteStatic == pair.responder.publicKey)
        #expect(responderKeys.remoteStatic == pair.initiator.publicKey)

        // A data message sealed with one side's send key opens with the other's receive key.
        var packet: [UInt8] = Array("ping".utf8) + [UInt8](repeating: 0, count: 16)
        packet.withUnsafeMutableBytes { raw in
            ChaChaPoly.seal(UnsafeMutableRawBufferPointer(rebasing: raw[0..<4]), tag: raw.baseAddress! + 4,
                            key: initiatorKeys.sendKey, counter: 0)
        }
        let opened = packet.withUnsafeMutableBytes { raw in
            ChaChaPoly.open(UnsafeMutableRawBufferPointer(rebasing: raw[0..<4]), tag: raw.baseAddress! + 4,
                            key: responderKeys.receiveKey, counter: 0)
        }
        #expect(opened && Array(packet[0..<4]) == Array("ping".utf8))
    }

    @Test("an initiation made for another responder key fails mac1")
    func wrongResponderStatic() throws {
        var entropy = SeededEntropy(seed: 2)
        var pair = HandshakePair(seed: 43)
        let other = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy))
        pair.peerOfInitiator = PeerHandshakeInfo(publicKey: other.publicKey)
        pair.initiatorJar = CookieJar(peerPublicKey: other.publicKey)
        let (initiation, _) = try pair.initiate(entropy: &entropy)
        #expect(pair.consume(initiation).dropReason == .invalidMAC1)
        var checker = CookieChecker(identity: pair.responder)
        #expect(initiation.withUnsafeBytes { checker.verifyMAC1($0) } == false)
        var reply = [UInt8](repeating: 0, count: 64)
        let admission = initiation.withUnsafeBytes { m in
            reply.withUnsafeMutableBytes { r in
                checker.admit(m, source: Endpoint(ipv4: 192, 0, 2, 1, port: 1), underLoad: true, now: .zero,
                              entropy: &entropy, cookieReply: r)
            }
        }
        #expect(admission == .drop(.invalidMAC1))
    }

    @Test("a PSK mismatch fails the response, not the initiation")
    func wrongPSK() throws {
        var entropy = SeededEntropy(seed: 3)
        var pair = HandshakePair(seed: 44, psk: SecretKey(random: &entropy))
        pair.peerOfResponder.presharedKey = SecretKey(random: &entropy)
        let (initiation, pending) = try pair.initiate(entropy: &entropy)
        let consumed = try #require(pair.consume(initiation).value)
        let (response, _) = try pair.respond(consumed, entropy: &entropy)
        #expect(response.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.dropReason
            == .handshakeFailed)
    }

    @Test("an initiator whose static key is not configured is an unknown peer")
    func unknownPeer() throws {
        var entropy = SeededEntropy(seed: 4)
        var pair = HandshakePair(seed: 45)
        pair.peerOfResponder.publicKey = Bytes32()  // the responder knows nobody with the initiator's key
        let (initiation, _) = try pair.initiate(entropy: &entropy)
        #expect(pair.consume(initiation).dropReason == .unknownPeer)
    }

    @Test("a replayed or older initiation is stale; one within 20 ms of the last is a flood")
    func replayAndFlood() throws {
        var entropy = SeededEntropy(seed: 5)
        var pair = HandshakePair(seed: 46)
        let t1 = TAI64N(unixSeconds: 1_000, nanoseconds: 0)
        let (first, _) = try pair.initiate(timestamp: t1, entropy: &entropy)
        #expect(pair.consume(first, now: Instant(nanoseconds: 1_000_000_000)).value != nil)
        // The very same bytes again, much later: replay.
        #expect(pair.consume(first, now: Instant(nanoseconds: 9_000_000_000)).dropReason == .staleTimestamp)
        // A new initiation with an older timestamp: stale too.
        let (older, _) = try pair.initiate(timestamp: TAI64N(unixSeconds: 999, nanoseconds: 0), entropy: &entropy)
        #expect(pair.consume(older, now: Instant(nanoseconds: 9_000_000_000)).dropReason == .staleTimestamp)
        // Newer, but 10 ms after the last accepted one: flood.
        let t2 = TAI64N(unixSeconds: 1_001, nanoseconds: 0)
        let (newer, _) = try pair.initiate(timestamp: t2, entropy: &entropy)
        #expect(pair.consume(newer, now: Instant(nanoseconds: 1_010_000_000)).dropReason == .rateLimited)
        #expect(pair.consume(newer, now: Instant(nanoseconds: 1_030_000_000)).value?.timestamp == t2)
    }

    @Test("tun and tap identities never complete a handshake", arguments: [
        (HandshakeIdentity.Mode.tun, HandshakeIdentity.Mode.tap), (.tap, .tun),
    ])
    func modeMismatch(initiatorMode: HandshakeIdentity.Mode, responderMode: HandshakeIdentity.Mode) throws {
        var entropy = SeededEntropy(seed: 6)
        var pair = HandshakePair(seed: 47, initiatorMode: initiatorMode, responderMode: responderMode)
        let (initiation, _) = try pair.initiate(entropy: &entropy)
        #expect(pair.consume(initiation).dropReason == .handshakeFailed)
    }

    @Test("tap identities complete a handshake with each other")
    func tapHandshake() throws {
        var entropy = SeededEntropy(seed: 7)
        var pair = HandshakePair(seed: 48, initiatorMode: .tap, responderMode: .tap)
        #expect(HandshakeIdentity.Mode.tap.identifier == "vpnd v1 ethernet")
        let (initiation, pending) = try pair.initiate(entropy: &entropy)
        let consumed = try #require(pair.consume(initiation).value)
        let (response, responderKeys) = try pair.respond(consumed, entropy: &entropy)
        let keys = try #require(response.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.value)
        #expect(keys.sendKey.constantTimeEquals(responderKeys.receiveKey))
    }

    @Test("a response is checked for mac1, receiver index and type before any Diffie-Hellman")
    func responseChecks() throws {
        var entropy = SeededEntropy(seed: 8)
        var pair = HandshakePair(seed: 49)
        let (initiation, pending) = try pair.initiate(index: 100, entropy: &entropy)
        let consumed = try #require(pair.consume(initiation).value)
        let (response, _) = try pair.respond(consumed, entropy: &entropy)
        // Addressed to another handshake of ours: a pending initiation with another index.
        let (_, otherPending) = try pair.initiate(index: 101, timestamp: TAI64N(unixSeconds: 2_000, nanoseconds: 0),
                                                  entropy: &entropy)
        #expect(response.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: otherPending) }.dropReason
            == .unexpectedHandshake)
        // An initiation handed to consumeResponse, a response to consumeInitiation.
        #expect(initiation.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.dropReason
            == .unknownType)
        #expect(pair.consume(response).dropReason == .unknownType)
        #expect(response.withUnsafeBytes { pair.initiator.consumeResponse($0, pending: pending) }.value != nil)
        // The same response read by the responder itself: mac1 is keyed to the initiator.
        #expect(response.withUnsafeBytes { pair.responder.consumeResponse($0, pending: pending) }.dropReason
            == .invalidMAC1)
    }

    @Test("a low-order peer public key is a configuration error")
    func lowOrderPeer() {
        var entropy = SeededEntropy(seed: 9)
        var pair = HandshakePair(seed: 50)
        pair.peerOfInitiator = PeerHandshakeInfo(publicKey: Bytes32())
        pair.initiatorJar = CookieJar(peerPublicKey: Bytes32())
        #expect(throws: HandshakeError.invalidPeerPublicKey(Bytes32())) {
            _ = try pair.initiate(entropy: &entropy)
        }
    }

    @Test("local indexes come from the entropy and skip indexes in use")
    func localIndex() {
        var entropy = ScriptedEntropy([[1, 0, 0, 0], [2, 0, 0, 0], [3, 0, 0, 0]])
        let index = HandshakeIdentity.newLocalIndex(using: &entropy) { $0 < 3 }
        #expect(index == 3)
    }
}

@Suite("TAI64N")
struct TAI64NTests {
    @Test("encodes as 12 big-endian bytes with the 2^62 + 10 label and whitened nanoseconds")
    func encoding() {
        let stamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 999_999_999)
        #expect(stamp.seconds == 0x4000_0000_0000_000A + 1_700_000_000)
        #expect(stamp.nanoseconds == 999_999_999 & ~UInt32((1 << 24) - 1))
        #expect(stamp.nanoseconds % (1 << 24) == 0)
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes.withUnsafeMutableBytes { stamp.write(to: $0) }
        #expect(Hex.encode(bytes) == "400000006553f10a3b000000")
        #expect(bytes.withUnsafeBytes { TAI64N(bytes: $0) } == stamp)
    }

    @Test("orders as its bytes do")
    func ordering() {
        let a = TAI64N(seconds: 5, nanoseconds: 900)
        let b = TAI64N(seconds: 6, nanoseconds: 0)
        let c = TAI64N(seconds: 6, nanoseconds: 1)
        #expect(a < b && b < c && !(c < a))
        // Within one whitening step two stamps are equal, so the second initiation is stale.
        #expect(TAI64N(unixSeconds: 1, nanoseconds: 1) == TAI64N(unixSeconds: 1, nanoseconds: 16_000_000))
    }
}
