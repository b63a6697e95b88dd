// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

// Fuzz target (b): handshake messages into HandshakeIdentity, CookieJar and CookieChecker.
//
// A fixed pair of identities: B initiated a handshake with A (the pending initiation is kept),
// A answered it, and A, under load, wrote a cookie reply to B's initiation. Everything is built
// once; each input works on copies of the value types. The first byte is the control:
//
//   bits 0-1  0: the rest is an initiation for A (consumeInitiation); one that is accepted must
//                lead, through A's response, to the same session keys on both sides
//                (bit 2: A already saw B's timestamp, bit 3: and 10 ms ago, bit 4: B unknown)
//             1: the rest is a response for B's pending initiation (consumeResponse); one that
//                is accepted must give the genuine response's keys
//             2: the rest is a cookie reply for B's jar; one that is taken must make a mac2 that
//                A's checker accepts from B's endpoint and refuses from another
//             3: the rest goes through A's CookieChecker.admit (bit 2: under load, bit 3: from
//                another endpoint, bit 4: 121 s later); a cookie reply it writes must be one
//                the sender's jar takes

/// The identities, the pending initiation and the genuine messages.
struct HandshakeWorld {
    static let t0 = Instant(nanoseconds: 5_000_000_000)
    static let t1 = t0 + .seconds(1)
    static let endpointB = Endpoint(ipv4: 198, 51, 100, 2, port: 40_000)
    static let otherEndpoint = Endpoint(ipv4: 203, 0, 113, 9, port: 4_444)
    static let timestamp = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0)

    let identityA: HandshakeIdentity
    let identityB: HandshakeIdentity
    let pending: PendingInitiation
    let jarB: CookieJar
    let checkerA: CookieChecker
    let initiation: [UInt8]
    let response: [UInt8]
    let cookieReply: [UInt8]
    let keysA: SessionKeys
    let keysB: SessionKeys

    init() {
        var entropy = SeededEntropy(seed: 0xF022_0002)
        identityA = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy))
        identityB = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy))
        var jarB = CookieJar(peerPublicKey: identityA.publicKey)
        var initiation = [UInt8](repeating: 0, count: Spec.initiationSize)
        var made: PendingInitiation? = nil
        initiation.withUnsafeMutableBytes { [identityA, identityB] message in
            do throws(HandshakeError) {
                made = try identityB.createInitiation(
                    peer: PeerHandshakeInfo(publicKey: identityA.publicKey), localIndex: 0x1111_1111,
                    timestamp: Self.timestamp, cookieJar: &jarB, now: Self.t0, entropy: &entropy, into: message)
            } catch {
                fatalError("the fuzz world cannot make an initiation: \(error)")
            }
        }
        pending = made!
        self.initiation = initiation
        let consumed = initiation.withUnsafeBytes { [identityA, identityB] in
            identityA.consumeInitiation($0, now: Self.t0) { _ in PeerHandshakeInfo(publicKey: identityB.publicKey) }
        }
        guard let consumed = consumed.value else { fatalError("the fuzz world's initiation was refused") }
        var jarA = CookieJar(peerPublicKey: identityB.publicKey)
        var response = [UInt8](repeating: 0, count: Spec.responseSize)
        let keysA = response.withUnsafeMutableBytes { [identityA] in
            identityA.createResponse(
                to: consumed, localIndex: 0x2222_2222, cookieJar: &jarA, now: Self.t0, entropy: &entropy, into: $0)
        }
        self.response = response
        let keysB = response.withUnsafeBytes { [identityB, pending] in identityB.consumeResponse($0, pending: pending) }
        guard let keysA = keysA.value, let keysB = keysB.value else { fatalError("the fuzz world has no session") }
        self.keysA = keysA
        self.keysB = keysB
        var checkerA = CookieChecker(identity: identityA)
        var cookieReply = [UInt8](repeating: 0, count: Spec.cookieReplySize)
        let admission = initiation.withUnsafeBytes { message in
            cookieReply.withUnsafeMutableBytes { reply in
                checkerA.admit(
                    message, source: Self.endpointB, underLoad: true, now: Self.t0, entropy: &entropy, cookieReply: reply)
            }
        }
        invariant(admission == .sendCookieReply, "the fuzz world's checker wrote no cookie reply")
        self.cookieReply = cookieReply
        self.checkerA = checkerA
        self.jarB = jarB
    }
}

let world = HandshakeWorld()

/// True when `message` (an initiation or response), stamped by `jar`, passes `checker` under load.
func passesUnderLoad(
    _ message: UnsafeRawBufferPointer, jar: inout CookieJar, checker: CookieChecker, source: Endpoint
) -> Bool {
    var copy = Array(message)
    copy.withUnsafeMutableBytes { jar.stampMACs($0, now: HandshakeWorld.t1) }
    return copy.withUnsafeBytes { checker.verifyMAC2($0, source: source, now: HandshakeWorld.t1) }
}

func sameKeys(_ a: SessionKeys, _ b: SessionKeys) -> Bool {
    a.sendKey.constantTimeEquals(b.sendKey) && a.receiveKey.constantTimeEquals(b.receiveKey)
        && a.localIndex == b.localIndex && a.remoteIndex == b.remoteIndex && a.remoteStatic == b.remoteStatic
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    guard size > 0 else { return 0 }
    let control = input.byte()
    let body = input.rest
    let w = world
    switch control & 3 {
    case 0:
        var info = PeerHandshakeInfo(publicKey: w.identityB.publicKey)
        if control & 0x04 != 0 { info.lastTimestamp = HandshakeWorld.timestamp }
        if control & 0x08 != 0 { info.lastInitiationAt = HandshakeWorld.t1 - .milliseconds(10) }
        let unknown = control & 0x10 != 0
        let result = w.identityA.consumeInitiation(body, now: HandshakeWorld.t1) { key in
            !unknown && key == w.identityB.publicKey ? info : nil
        }
        guard let consumed = result.value else { return 0 }
        invariant(!unknown && consumed.peerPublicKey == w.identityB.publicKey, "an initiation from an unknown key was accepted")
        var entropy = SeededEntropy(seed: 7)
        var jarA = CookieJar(peerPublicKey: w.identityB.publicKey)
        var response = [UInt8](repeating: 0, count: Spec.responseSize)
        let keysA = response.withUnsafeMutableBytes {
            w.identityA.createResponse(
                to: consumed, localIndex: 0x3333_3333, cookieJar: &jarA, now: HandshakeWorld.t1, entropy: &entropy, into: $0)
        }
        let keysB = response.withUnsafeBytes { w.identityB.consumeResponse($0, pending: w.pending) }
        guard let keysA = keysA.value, let keysB = keysB.value else {
            invariant(false, "an accepted initiation led to no session (response: \(keysB.dropReason.map { "\($0)" } ?? "made"))")
            return 0
        }
        invariant(keysA.sendKey.constantTimeEquals(keysB.receiveKey) && keysA.receiveKey.constantTimeEquals(keysB.sendKey),
                  "the two sides derived different keys")
    case 1:
        let result = w.identityB.consumeResponse(body, pending: w.pending)
        guard let keys = result.value else { return 0 }
        invariant(sameKeys(keys, w.keysB), "an accepted response gave keys other than the genuine response's")
    case 2:
        var jar = w.jarB
        guard jar.consumeCookieReply(body, now: HandshakeWorld.t1) == nil else { return 0 }
        w.initiation.withUnsafeBytes { initiation in
            invariant(passesUnderLoad(initiation, jar: &jar, checker: w.checkerA, source: HandshakeWorld.endpointB),
                      "a cookie the jar took does not make a valid mac2")
            invariant(!passesUnderLoad(initiation, jar: &jar, checker: w.checkerA, source: HandshakeWorld.otherEndpoint),
                      "a cookie for B's endpoint is valid from another endpoint")
        }
    default:
        var checker = w.checkerA
        var entropy = SeededEntropy(seed: 11)
        var reply = [UInt8](repeating: 0, count: Spec.cookieReplySize)
        let source = control & 0x08 != 0 ? HandshakeWorld.otherEndpoint : HandshakeWorld.endpointB
        let now = control & 0x10 != 0 ? HandshakeWorld.t1 + .seconds(121) : HandshakeWorld.t1
        let verdict = reply.withUnsafeMutableBytes {
            checker.admit(body, source: source, underLoad: control & 0x04 != 0, now: now, entropy: &entropy, cookieReply: $0)
        }
        if verdict != .drop(.invalidMAC1) && verdict != .drop(.truncated) && verdict != .drop(.oversized)
            && verdict != .drop(.unknownType)
        {
            invariant(checker.verifyMAC1(body), "admit let through a message whose mac1 does not verify: \(verdict)")
        }
        guard verdict == .sendCookieReply else { return 0 }
        // The sender (whoever holds mac1 of this message) takes the cookie and is then admitted.
        var jar = CookieJar(peerPublicKey: w.identityA.publicKey)
        var copy = Array(body)
        copy.withUnsafeMutableBytes { jar.stampMACs($0, now: now) }
        let taken = reply.withUnsafeBytes { jar.consumeCookieReply($0, now: now) }
        invariant(taken == nil, "our own cookie reply was refused: \(taken.map { "\($0)" } ?? "")")
        copy.withUnsafeMutableBytes { jar.stampMACs($0, now: now) }
        invariant(copy.withUnsafeBytes { checker.verifyMAC2($0, source: source, now: now) },
                  "a message stamped with our cookie fails mac2")
    }
    return 0
}

@_cdecl("FuzzHandshake_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: {
        let w = world
        return [
            Seed("initiation", [0x00] + w.initiation),
            Seed("initiation-stale", [0x04] + w.initiation),
            Seed("initiation-unknown", [0x10] + w.initiation),
            Seed("response", [0x01] + w.response),
            Seed("cookie-reply", [0x02] + w.cookieReply),
            Seed("admit-initiation", [0x03] + w.initiation),
            Seed("admit-initiation-load", [0x07] + w.initiation),
            Seed("admit-response-load", [0x0F] + w.response),
            Seed("short", [0x00, 1, 0, 0, 0]),
        ]
    }, callback: fuzzOneInput)
}
