// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The sending side of WireGuard's DoS cookies for one peer: puts mac1 and mac2 on the handshake
/// messages we send to that peer, and takes the cookies it sends back (whitepaper 5.4.4, 5.4.7).
///
/// It remembers the mac1 of the last message it stamped, because a cookie reply is encrypted
/// with that mac1 as associated data, and the cookie it last received, which keys mac2 for
/// ``Spec/cookieRefreshTime`` (120 s). One per peer; a value type, not thread-safe.
public struct CookieJar: Sendable {
    /// The peer's static public key.
    public let peerPublicKey: Bytes32
    /// `HASH("mac1----" || peer public key)`: keys mac1 on messages to that peer.
    public let mac1Key: Bytes32
    /// `HASH("cookie--" || peer public key)`: decrypts the peer's cookie replies.
    public let cookieKey: Bytes32
    private var cookie = CookieMAC.zero
    private var cookieReceivedAt: Instant?
    private var lastMAC1 = CookieMAC.zero
    private var lastSenderIndex: UInt32 = 0
    private var hasLastMAC1 = false

    /// A jar for messages to the peer with `peerPublicKey`.
    public init(peerPublicKey: Bytes32) {
        self.peerPublicKey = peerPublicKey
        mac1Key = HandshakeIdentity.labelledKey(HandshakeIdentity.mac1Label, peerPublicKey)
        cookieKey = HandshakeIdentity.labelledKey(HandshakeIdentity.cookieLabel, peerPublicKey)
    }

    /// True when a cookie received at most 120 s before `now` is held, so mac2 will be set.
    public func hasCookie(at now: Instant) -> Bool {
        guard let received = cookieReceivedAt, now >= received else { return false }
        return now - received <= Spec.cookieRefreshTime
    }

    /// Writes mac1 and mac2 into the last 32 bytes of a handshake message (initiation or
    /// response) whose other fields are final.
    ///
    /// mac1 = `MAC(HASH("mac1----" || peer public key), message up to mac1)`; mac2 =
    /// `MAC(cookie, message up to mac2)` with a fresh cookie, else 16 zero bytes (whitepaper 5.4.4).
    /// Remembers mac1 and the message's sender index for the cookie reply that may answer it.
    ///
    /// - Parameters:
    ///   - message: a 148-byte initiation or 92-byte response.
    ///   - now: the current instant, to judge the cookie's age.
    public mutating func stampMACs(_ message: UnsafeMutableRawBufferPointer, now: Instant) {
        let count = message.count
        precondition(count == Spec.initiationSize || count == Spec.responseSize,
                     "stampMACs takes a 148-byte initiation or a 92-byte response")
        let readable = UnsafeRawBufferPointer(message)
        let mac1 = CookieMAC(key: mac1Key, message: MACFields.mac1Covered(readable))
        let mac1Field = UnsafeMutableRawBufferPointer(
            rebasing: message[MACFields.mac1Offset(count)..<MACFields.mac2Offset(count)])
        mac1.write(to: mac1Field)
        lastMAC1 = mac1
        lastSenderIndex = readable.loadLE32(at: 4)
        hasLastMAC1 = true
        let mac2Field = UnsafeMutableRawBufferPointer(rebasing: message[MACFields.mac2Offset(count)...])
        if hasCookie(at: now) {
            let mac2 = cookie.withUnsafeBytes { CookieMAC(key: $0, message: MACFields.mac2Covered(readable)) }
            mac2.write(to: mac2Field)
        } else {
            CookieMAC.zero.write(to: mac2Field)
        }
    }

    /// Takes a cookie reply (type 3) from the peer.
    ///
    /// The cookie is `XChaCha20-Poly1305` under `HASH("cookie--" || peer public key)` with the
    /// reply's nonce and the mac1 of our last message as associated data (whitepaper 5.4.7). Only
    /// a reply that decrypts changes the jar; the next stamped message then carries mac2.
    ///
    /// - Parameters:
    ///   - reply: the whole 64-byte message.
    ///   - now: when it arrived (the cookie is good for 120 s from then).
    /// - Returns: nil when the cookie was taken; else why the reply was dropped:
    ///   `truncated`/`oversized`/`unknownType` for a malformed message, `unexpectedHandshake` when
    ///   we sent nothing it could answer or its receiver index is not our last sender index,
    ///   `handshakeFailed` when it does not decrypt.
    public mutating func consumeCookieReply(_ reply: UnsafeRawBufferPointer, now: Instant) -> DropReason? {
        switch Wire.classify(reply) {
        case .cookieReply: break
        case .invalid(let reason): return reason
        default: return .unknownType
        }
        guard hasLastMAC1, reply.loadLE32(at: MessageLayout.CookieReply.receiverIndex) == lastSenderIndex else {
            return .unexpectedHandshake
        }
        let nonce = UnsafeRawBufferPointer(
            rebasing: reply[MessageLayout.CookieReply.nonce..<MessageLayout.CookieReply.encryptedCookie])
        let sealed = UnsafeRawBufferPointer(rebasing: reply[MessageLayout.CookieReply.encryptedCookie...])
        var opened = CookieMAC.zero
        let ok = withUnsafeMutableBytes(of: &opened.storage) { out in
            cookieKey.withUnsafeBytes { key in
                lastMAC1.withUnsafeBytes { ad in
                    XChaChaPoly.open(sealed, into: out, key: key, nonce: nonce, authenticating: ad)
                }
            }
        }
        guard ok else { return .handshakeFailed }
        cookie = opened
        cookieReceivedAt = now
        return nil
    }
}
