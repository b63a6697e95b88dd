// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The outcome of processing a received handshake message: a value, or the reason it was dropped.
///
/// Nothing is stored for a message that did not authenticate: on `.drop` no state changed.
public enum HandshakeResult<Value: Sendable>: Sendable {
    /// The message authenticated and was accepted.
    case accepted(Value)
    /// The message was refused; count it under this reason.
    case drop(DropReason)

    /// The value when accepted.
    public var value: Value? {
        if case .accepted(let value) = self { return value }
        return nil
    }

    /// The reason when dropped.
    public var dropReason: DropReason? {
        if case .drop(let reason) = self { return reason }
        return nil
    }
}

/// A configuration error found while building a handshake message.
public enum HandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer's public key is a low-order point, so no Diffie-Hellman with it is possible.
    case invalidPeerPublicKey(Bytes32)

    public var description: String {
        switch self {
        case .invalidPeerPublicKey(let key):
            return "peer public key \(key) is a low-order point: check the peer's PublicKey in the config"
        }
    }
}

/// What the handshake needs to know about a configured peer.
///
/// The initiator uses `publicKey` and `presharedKey`. A responder's `lookupPeer` returns it with
/// the peer's replay state, which the caller owns and updates from ``ConsumedInitiation``:
/// `lastTimestamp` must become ``ConsumedInitiation/timestamp`` and `lastInitiationAt` the `now`
/// of that call.
public struct PeerHandshakeInfo: Sendable {
    /// The peer's static public key.
    public var publicKey: Bytes32
    /// The pre-shared key, or nil for none (Noise then mixes 32 zero bytes, as WireGuard does).
    public var presharedKey: SecretKey?
    /// The greatest TAI64N timestamp accepted from this peer; an initiation must carry a greater one.
    public var lastTimestamp: TAI64N?
    /// When the last initiation from this peer was accepted (flood guard: at most one per
    /// ``ConsumedInitiation/minimumInitiationInterval``).
    public var lastInitiationAt: Instant?

    public init(publicKey: Bytes32, presharedKey: SecretKey? = nil, lastTimestamp: TAI64N? = nil,
                lastInitiationAt: Instant? = nil) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.lastTimestamp = lastTimestamp
        self.lastInitiationAt = lastInitiationAt
    }
}

/// The result of a completed handshake: the transport keys of one session and its indexes.
///
/// `(T_send, T_recv)` of whitepaper 5.4.5: the initiator sends with the first output of
/// `Kdf2(C, ε)` and the responder with the second, so one side's `sendKey` is the other's
/// `receiveKey`.
public struct SessionKeys: Sendable {
    /// Key for sealing our transport messages (counter nonces from 0).
    public let sendKey: SecretKey
    /// Key for opening the peer's transport messages.
    public let receiveKey: SecretKey
    /// Our index: the receiver index the peer puts in its transport messages to us.
    public let localIndex: UInt32
    /// The peer's index: the receiver index we put in our transport messages.
    public let remoteIndex: UInt32
    /// True on the side that sent the initiation (it may send data at once; the responder waits
    /// for the first data message before using these keys to send, whitepaper 6.1).
    public let isInitiator: Bool
    /// The peer's static public key.
    public let remoteStatic: Bytes32

    public init(sendKey: SecretKey, receiveKey: SecretKey, localIndex: UInt32, remoteIndex: UInt32,
                isInitiator: Bool, remoteStatic: Bytes32) {
        self.sendKey = sendKey
        self.receiveKey = receiveKey
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.isInitiator = isInitiator
        self.remoteStatic = remoteStatic
    }
}
