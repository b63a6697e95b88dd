// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// An initiation that authenticated: who sent it and the Noise state to answer it with.
///
/// Before calling ``HandshakeIdentity/createResponse(to:localIndex:cookieJar:now:entropy:into:)``,
/// record ``timestamp`` as the peer's ``PeerHandshakeInfo/lastTimestamp`` and the `now` of
/// ``HandshakeIdentity/consumeInitiation(_:now:lookupPeer:)`` as its
/// ``PeerHandshakeInfo/lastInitiationAt``: that is what makes a replay of this message stale.
public struct ConsumedInitiation: Sendable {
    /// wireguard-go's `HandshakeInitationRate`: initiations from one peer closer together than
    /// this are dropped as a flood (`rateLimited`).
    public static let minimumInitiationInterval: Duration = .milliseconds(20)

    fileprivate let noise: NoiseAnswering
    /// The initiator's static public key, a configured peer.
    public let peerPublicKey: Bytes32
    /// The initiator's index: the receiver index of our response and of our data messages.
    public let remoteIndex: UInt32
    /// The decrypted TAI64N timestamp, greater than the peer's last accepted one.
    public let timestamp: TAI64N
}

extension HandshakeIdentity {
    /// Processes a handshake initiation (type 1, 148 bytes) sent to us (whitepaper 5.4.2).
    ///
    /// Checks, in order, stopping at the first failure: well-formed (`truncated`, `oversized`,
    /// `unknownType`); mac1 under our mac1 key, before any Diffie-Hellman (`invalidMAC1`); the
    /// encrypted static decrypts (`handshakeFailed`: not for us, or a peer in the other mode);
    /// `lookupPeer` knows that static (`unknownPeer`); the timestamp decrypts (`handshakeFailed`);
    /// the timestamp is newer than the peer's last (`staleTimestamp`); the last accepted
    /// initiation is at least 20 ms old (`rateLimited`). Changes nothing, anywhere.
    ///
    /// - Parameters:
    ///   - message: the received datagram.
    ///   - now: the current instant (flood guard).
    ///   - lookupPeer: the configured peer with this static public key and its replay state, or nil.
    public func consumeInitiation(
        _ message: UnsafeRawBufferPointer, now: Instant, lookupPeer: (Bytes32) -> PeerHandshakeInfo?
    ) -> HandshakeResult<ConsumedInitiation> {
        switch Wire.classify(message) {
        case .initiation: break
        case .invalid(let reason): return .drop(reason)
        default: return .drop(.unknownType)
        }
        let mac1 = CookieMAC(key: mac1Key, message: MACFields.mac1Covered(message))
        guard mac1.constantTimeEquals(MACFields.mac1(message)) else { return .drop(.invalidMAC1) }

        var identified: NoiseInitiatorIdentified
        do {
            identified = try noiseResponder().readMessage1Identity(UnsafeRawBufferPointer(
                rebasing: message[MessageLayout.Initiation.ephemeral..<MessageLayout.Initiation.encryptedTimestamp]))
        } catch {
            return .drop(.handshakeFailed)
        }
        let initiatorStatic = identified.initiatorStatic
        guard let peer = lookupPeer(initiatorStatic) else { return .drop(.unknownPeer) }
        if let psk = peer.presharedKey { identified.setPresharedKey(psk) }
        var stamp: (UInt64, UInt32) = (0, 0)
        var noise: NoiseAnswering? = nil
        let timestamp: TAI64N
        do {
            timestamp = try withUnsafeMutableBytes(of: &stamp) { (raw) throws(NoiseError) -> TAI64N in
                let payload = UnsafeMutableRawBufferPointer(rebasing: raw[0..<TAI64N.byteCount])
                noise = try identified.readMessage1Payload(
                    UnsafeRawBufferPointer(
                        rebasing: message[MessageLayout.Initiation.encryptedTimestamp..<MessageLayout.Initiation.mac1]),
                    into: payload)
                return TAI64N(bytes: UnsafeRawBufferPointer(payload))
            }
        } catch {
            return .drop(.handshakeFailed)
        }
        if let last = peer.lastTimestamp, timestamp <= last { return .drop(.staleTimestamp) }
        if let last = peer.lastInitiationAt, now >= last, now - last <= ConsumedInitiation.minimumInitiationInterval {
            return .drop(.rateLimited)
        }
        return .accepted(ConsumedInitiation(
            noise: noise!, peerPublicKey: initiatorStatic,
            remoteIndex: message.loadLE32(at: MessageLayout.Initiation.senderIndex), timestamp: timestamp))
    }

    /// Writes the handshake response (type 2, 92 bytes) to an accepted initiation and derives the
    /// session (whitepaper 5.4.3, 5.4.5).
    ///
    /// Noise message 2 (`e, ee, se, psk`, empty payload) goes at offset 12; then `cookieJar`
    /// stamps mac1 and mac2. Uses the entropy once, for the ephemeral key (32 bytes).
    ///
    /// - Parameters:
    ///   - initiation: from ``consumeInitiation(_:now:lookupPeer:)``.
    ///   - localIndex: our sender index, from ``newLocalIndex(using:isInUse:)`` and the index table.
    ///   - cookieJar: the initiator's jar (it may have sent us a cookie for our responses).
    ///   - now: the current instant (cookie age).
    ///   - entropy: supplies the ephemeral private key.
    ///   - message: exactly 92 writable bytes.
    /// - Returns: the session's keys (this side is the responder); a drop only if a key turned out
    ///   to be of low order, which ``consumeInitiation(_:now:lookupPeer:)`` already rules out.
    public func createResponse(
        to initiation: ConsumedInitiation, localIndex: UInt32, cookieJar: inout CookieJar, now: Instant,
        entropy: inout some EntropySource, into message: UnsafeMutableRawBufferPointer
    ) -> HandshakeResult<SessionKeys> {
        precondition(cookieJar.peerPublicKey == initiation.peerPublicKey, "the cookie jar belongs to another peer")
        let keys = writeResponse(to: initiation, localIndex: localIndex, entropy: &entropy, into: message)
        if case .accepted = keys { cookieJar.stampMACs(message, now: now) }
        return keys
    }

    /// ``createResponse(to:localIndex:cookieJar:now:entropy:into:)`` without the MACs, which stay
    /// zero for the packet thread to stamp once (see ``writeInitiation(peer:localIndex:timestamp:now:entropy:into:)``).
    public func writeResponse(
        to initiation: ConsumedInitiation, localIndex: UInt32, entropy: inout some EntropySource,
        into message: UnsafeMutableRawBufferPointer
    ) -> HandshakeResult<SessionKeys> {
        precondition(message.count == Spec.responseSize, "a response has 92 bytes")
        Wire.writePrefix(.response, to: message)
        message.storeLE32(localIndex, at: MessageLayout.Response.senderIndex)
        message.storeLE32(initiation.remoteIndex, at: MessageLayout.Response.receiverIndex)
        let completed: NoiseCompleted
        do {
            completed = try initiation.noise.writeMessage2(
                payload: UnsafeRawBufferPointer(start: nil, count: 0),
                into: UnsafeMutableRawBufferPointer(rebasing: message[MessageLayout.Response.noiseMessage]),
                entropy: &entropy)
        } catch {
            secureZero(message)
            return .drop(.handshakeFailed)
        }
        let keys = completed.split()
        return .accepted(SessionKeys(
            sendKey: keys.send, receiveKey: keys.receive, localIndex: localIndex,
            remoteIndex: initiation.remoteIndex, isInitiator: false, remoteStatic: initiation.peerPublicKey))
    }
}
