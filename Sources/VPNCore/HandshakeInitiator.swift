// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// An initiation we sent and whose response we await: the Noise state after message 1.
///
/// Keep it until a response with ``localIndex`` as its receiver index arrives, or until the
/// retry timer makes a new one (whitepaper 6.4). Contains secrets (our ephemeral private key);
/// they are zeroed when the last copy goes.
public struct PendingInitiation: Sendable {
    fileprivate let noise: NoiseAwaitingResponse
    /// Our index, the sender index of the initiation.
    public let localIndex: UInt32
    /// The responder's static public key.
    public let peerPublicKey: Bytes32
    /// The timestamp the initiation carried.
    public let timestamp: TAI64N
    /// When the initiation was made.
    public let createdAt: Instant
}

extension PendingInitiation {
    /// The same state under another local index (a ``HandshakeProcessor`` builds initiations
    /// with index zero; the packet thread picks the index when it sends the message).
    func withLocalIndex(_ index: UInt32) -> PendingInitiation {
        PendingInitiation(
            noise: noise, localIndex: index, peerPublicKey: peerPublicKey, timestamp: timestamp, createdAt: createdAt)
    }
}

extension HandshakeIdentity {
    /// Writes a handshake initiation (type 1, 148 bytes) to `peer` (whitepaper 5.4.2).
    ///
    /// Noise message 1 (`e, es, s, ss`, payload = the TAI64N timestamp) goes at offset 8; then
    /// `cookieJar` stamps mac1 and mac2. Uses the entropy once, for the ephemeral key (32 bytes).
    ///
    /// - Parameters:
    ///   - peer: the responder's public key and PSK (its replay fields are not used here).
    ///   - localIndex: our sender index, from ``newLocalIndex(using:isInUse:)`` and the index table.
    ///   - timestamp: the wall-clock time as TAI64N; must grow from one initiation to the next.
    ///   - cookieJar: the peer's jar; supplies mac2 when it holds a fresh cookie, remembers mac1.
    ///   - now: the monotonic time (cookie age, ``PendingInitiation/createdAt``).
    ///   - entropy: supplies the ephemeral private key.
    ///   - message: exactly 148 writable bytes.
    /// - Returns: the state to hand to ``consumeResponse(_:pending:)``.
    /// - Throws: ``HandshakeError/invalidPeerPublicKey(_:)`` when the peer's key is a low-order point.
    public func createInitiation(
        peer: PeerHandshakeInfo, localIndex: UInt32, timestamp: TAI64N, cookieJar: inout CookieJar,
        now: Instant, entropy: inout some EntropySource, into message: UnsafeMutableRawBufferPointer
    ) throws(HandshakeError) -> PendingInitiation {
        precondition(cookieJar.peerPublicKey == peer.publicKey, "the cookie jar belongs to another peer")
        let pending = try writeInitiation(
            peer: peer, localIndex: localIndex, timestamp: timestamp, now: now, entropy: &entropy, into: message)
        cookieJar.stampMACs(message, now: now)
        return pending
    }

    /// ``createInitiation(peer:localIndex:timestamp:cookieJar:now:entropy:into:)`` without the
    /// MACs, which stay zero: the handshake thread writes the Noise part, and the packet thread,
    /// which owns the peer's cookie jar, stamps them once when it sends the message.
    public func writeInitiation(
        peer: PeerHandshakeInfo, localIndex: UInt32, timestamp: TAI64N, now: Instant,
        entropy: inout some EntropySource, into message: UnsafeMutableRawBufferPointer
    ) throws(HandshakeError) -> PendingInitiation {
        precondition(message.count == Spec.initiationSize, "an initiation has 148 bytes")
        let start = noiseInitiator(remoteStatic: peer.publicKey, presharedKey: peer.presharedKey)
        var noise: NoiseAwaitingResponse? = nil
        Wire.writePrefix(.initiation, to: message)
        message.storeLE32(localIndex, at: MessageLayout.Initiation.senderIndex)
        var stamp: (UInt64, UInt32) = (0, 0)
        do {
            try withUnsafeMutableBytes(of: &stamp) { (raw) throws(NoiseError) in
                let payload = UnsafeMutableRawBufferPointer(rebasing: raw[0..<TAI64N.byteCount])
                timestamp.write(to: payload)
                noise = try start.writeMessage1(
                    payload: UnsafeRawBufferPointer(payload),
                    into: UnsafeMutableRawBufferPointer(rebasing: message[MessageLayout.Initiation.noiseMessage]),
                    entropy: &entropy)
            }
        } catch {
            secureZero(message)
            throw .invalidPeerPublicKey(peer.publicKey)
        }
        return PendingInitiation(
            noise: noise!, localIndex: localIndex, peerPublicKey: peer.publicKey, timestamp: timestamp,
            createdAt: now)
    }

    /// Processes a handshake response (type 2, 92 bytes) to `pending` (whitepaper 5.4.3, 5.4.5).
    ///
    /// Checks, in order: the message is a well-formed response; mac1 under our own mac1 key
    /// (`invalidMAC1`); its receiver index is `pending.localIndex` (`unexpectedHandshake`); then
    /// the Noise message 2 (`e, ee, se, psk`, empty payload) decrypts (`handshakeFailed`: wrong
    /// key, PSK or mode). mac2 is the ``CookieChecker``'s business, before this call, under load.
    ///
    /// - Returns: the session's keys, or the drop reason; `pending` is unchanged either way and a
    ///   dropped response may be followed by a genuine one.
    public func consumeResponse(_ message: UnsafeRawBufferPointer, pending: PendingInitiation)
        -> HandshakeResult<SessionKeys>
    {
        switch Wire.classify(message) {
        case .response: break
        case .invalid(let reason): return .drop(reason)
        default: return .drop(.unknownType)
        }
        let mac1 = CookieMAC(key: mac1Key, message: MACFields.mac1Covered(message))
        guard mac1.constantTimeEquals(MACFields.mac1(message)) else { return .drop(.invalidMAC1) }
        guard message.loadLE32(at: MessageLayout.Response.receiverIndex) == pending.localIndex else {
            return .drop(.unexpectedHandshake)
        }
        let completed: NoiseCompleted
        do {
            completed = try pending.noise.readMessage2(
                UnsafeRawBufferPointer(rebasing: message[MessageLayout.Response.noiseMessage]),
                payloadInto: UnsafeMutableRawBufferPointer(start: nil, count: 0))
        } catch {
            return .drop(.handshakeFailed)
        }
        let keys = completed.split()
        return .accepted(SessionKeys(
            sendKey: keys.send, receiveKey: keys.receive, localIndex: pending.localIndex,
            remoteIndex: message.loadLE32(at: MessageLayout.Response.senderIndex), isInitiator: true,
            remoteStatic: pending.peerPublicKey))
    }
}
