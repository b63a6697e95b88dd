// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// What to do with a received handshake message after the cookie checks.
public enum HandshakeAdmission: Equatable, Sendable {
    /// mac1 is valid (and mac2 too when under load): go on with the handshake.
    case proceed
    /// Under load without a valid mac2: a 64-byte cookie reply was written; send it to the
    /// source and process the message no further.
    case sendCookieReply
    /// Drop the message: malformed, or mac1 does not verify.
    case drop(DropReason)
}

/// The receiving side of WireGuard's DoS protection for one interface: verifies mac1 and mac2 on
/// handshake messages sent to us and answers with cookie replies when under load (whitepaper
/// 5.3, 5.4.4, 5.4.7).
///
/// A cookie is `MAC(secret, source address bytes || source port)`; the secret is 32 random bytes
/// from the injected entropy, replaced when older than ``Spec/cookieRefreshTime`` (120 s). As in
/// wireguard-go only the current secret is kept: once it is older than 120 s every mac2 is
/// invalid until the next cookie reply makes a new secret, so a cookie from the previous secret
/// earns a fresh cookie reply rather than acceptance. Whether we are under load is the caller's
/// decision (for instance: more than a few handshakes queued), passed in as a `Bool`.
///
/// One per interface; a value type, not thread-safe.
public struct CookieChecker: Sendable {
    /// `HASH("mac1----" || our public key)`.
    public let mac1Key: Bytes32
    /// `HASH("cookie--" || our public key)`.
    public let cookieKey: Bytes32
    private var secret: SecretKey?
    private var secretCreatedAt = Instant.zero

    /// A checker for messages addressed to `identity`.
    public init(identity: HandshakeIdentity) {
        mac1Key = identity.mac1Key
        cookieKey = identity.cookieKey
    }

    /// True when `message` is a whole initiation or response whose mac1 verifies. Cheap (one
    /// BLAKE2s); do it before anything else.
    public func verifyMAC1(_ message: UnsafeRawBufferPointer) -> Bool {
        guard MACFields.isHandshakeMessage(message) else { return false }
        let expected = CookieMAC(key: mac1Key, message: MACFields.mac1Covered(message))
        return expected.constantTimeEquals(MACFields.mac1(message))
    }

    /// True when the current cookie secret (at most 120 s old) gives `message`'s mac2 for `source`.
    public func verifyMAC2(_ message: UnsafeRawBufferPointer, source: Endpoint, now: Instant) -> Bool {
        guard MACFields.isHandshakeMessage(message), let cookie = currentCookie(for: source, now: now) else {
            return false
        }
        let expected = cookie.withUnsafeBytes { CookieMAC(key: $0, message: MACFields.mac2Covered(message)) }
        return expected.constantTimeEquals(MACFields.mac2(message))
    }

    /// Writes a cookie reply to `message` (an initiation or response from `source`) into `reply`.
    ///
    /// Makes a new secret first when there is none or it is older than 120 s (32 bytes of
    /// entropy), then draws a 24-byte nonce. Fields: type 3, receiver index = the message's sender
    /// index, nonce, `XChaCha20-Poly1305(HASH("cookie--" || our public key), nonce, cookie,
    /// AD = the message's mac1)`.
    ///
    /// - Parameters:
    ///   - message: the 148- or 92-byte message being answered (its mac1 already verified).
    ///   - source: its source address and port, as received.
    ///   - now: the current instant.
    ///   - entropy: for the secret and the nonce.
    ///   - reply: exactly 64 writable bytes.
    public mutating func writeCookieReply(
        answering message: UnsafeRawBufferPointer, source: Endpoint, now: Instant,
        entropy: inout some EntropySource, into reply: UnsafeMutableRawBufferPointer
    ) {
        precondition(MACFields.isHandshakeMessage(message), "a cookie reply answers an initiation or a response")
        precondition(reply.count == Spec.cookieReplySize, "a cookie reply has 64 bytes")
        if !secretIsFresh(now: now) {
            secret = SecretKey(random: &entropy)
            secretCreatedAt = now
        }
        let cookie = currentCookie(for: source, now: now)!
        Wire.writePrefix(.cookieReply, to: reply)
        reply.storeLE32(message.loadLE32(at: 4), at: MessageLayout.CookieReply.receiverIndex)
        let nonce = UnsafeMutableRawBufferPointer(
            rebasing: reply[MessageLayout.CookieReply.nonce..<MessageLayout.CookieReply.encryptedCookie])
        entropy.fill(nonce)
        let sealed = UnsafeMutableRawBufferPointer(rebasing: reply[MessageLayout.CookieReply.encryptedCookie...])
        cookie.withUnsafeBytes { plaintext in
            cookieKey.withUnsafeBytes { key in
                XChaChaPoly.seal(plaintext, into: sealed, key: key, nonce: UnsafeRawBufferPointer(nonce),
                                 authenticating: MACFields.mac1(message))
            }
        }
    }

    /// The admission step for a received initiation or response, in wireguard-go's order:
    /// well-formed, then mac1 (else `.drop(.invalidMAC1)`), then, only when `underLoad`, mac2
    /// (else a cookie reply is written and `.sendCookieReply` returned).
    ///
    /// After `.proceed` under load, also ask the ``HandshakeRateLimiter`` before the expensive
    /// Diffie-Hellman work (wireguard-go rate-limits only under load).
    ///
    /// - Parameters:
    ///   - message: the received datagram.
    ///   - source: where it came from.
    ///   - underLoad: the caller's judgement that handshakes are arriving faster than it can serve.
    ///   - now: the current instant.
    ///   - entropy: for a cookie reply.
    ///   - cookieReply: 64 writable bytes, filled only on `.sendCookieReply`.
    public mutating func admit(
        _ message: UnsafeRawBufferPointer, source: Endpoint, underLoad: Bool, now: Instant,
        entropy: inout some EntropySource, cookieReply: UnsafeMutableRawBufferPointer
    ) -> HandshakeAdmission {
        switch Wire.classify(message) {
        case .initiation, .response: break
        case .invalid(let reason): return .drop(reason)
        default: return .drop(.unknownType)
        }
        guard verifyMAC1(message) else { return .drop(.invalidMAC1) }
        if underLoad && !verifyMAC2(message, source: source, now: now) {
            writeCookieReply(answering: message, source: source, now: now, entropy: &entropy, into: cookieReply)
            return .sendCookieReply
        }
        return .proceed
    }

    private func secretIsFresh(now: Instant) -> Bool {
        secret != nil && now >= secretCreatedAt && now - secretCreatedAt <= Spec.cookieRefreshTime
    }

    /// `MAC(secret, source bytes)`, or nil without a fresh secret.
    private func currentCookie(for source: Endpoint, now: Instant) -> CookieMAC? {
        guard secretIsFresh(now: now), let secret else { return nil }
        return Self.withSourceBytes(source) { bytes in
            secret.withUnsafeBytes { CookieMAC(key: $0, message: bytes) }
        }
    }

    /// Calls `body` with the bytes a cookie is computed over: the IP address (4 bytes for IPv4,
    /// 16 for IPv6) then the port, little-endian, as wireguard-go's `netip.AddrPort.MarshalBinary`.
    static func withSourceBytes<R>(_ source: Endpoint, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var buffer: (UInt64, UInt64, UInt16) = (0, 0, 0)
        return withUnsafeBytes(of: source.address) { address in
            withUnsafeMutableBytes(of: &buffer) { out in
                let isIPv4 = address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xFF && address[11] == 0xFF
                let addressBytes = isIPv4 ? UnsafeRawBufferPointer(rebasing: address[12..<16]) : address
                out.copyMemory(from: addressBytes)
                out.storeBytes(of: source.port.littleEndian, toByteOffset: addressBytes.count, as: UInt16.self)
                return body(UnsafeRawBufferPointer(rebasing: out[0..<(addressBytes.count + 2)]))
            }
        }
    }
}
