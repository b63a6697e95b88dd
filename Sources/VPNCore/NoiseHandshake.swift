// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

// The IK handshake as one type per state: each step takes the state it needs and returns the
// next, so a step out of order does not compile (no runtime step checks). The tokens themselves
// are in NoiseHandshakeState.
//
//   initiator: NoiseInitiator --writeMessage1--> NoiseAwaitingResponse --readMessage2--> NoiseCompleted
//   responder: NoiseResponder --readMessage1Identity--> NoiseInitiatorIdentified
//                             --readMessage1Payload--> NoiseAnswering --writeMessage2--> NoiseCompleted

/// The initiator before message 1.
public struct NoiseInitiator: Sendable {
    private let state: NoiseHandshakeState

    /// Starts a handshake towards `remoteStatic` (see ``NoiseHandshakeState/init(pattern:role:prologue:localStatic:remoteStatic:presharedKey:)``).
    public init(
        pattern: NoiseHandshakeState.Pattern, prologue: UnsafeRawBufferPointer, localStatic: SecretKey,
        remoteStatic: Bytes32, presharedKey: SecretKey? = nil
    ) {
        state = NoiseHandshakeState(
            pattern: pattern, role: .initiator, prologue: prologue, localStatic: localStatic, remoteStatic: remoteStatic,
            presharedKey: presharedKey)
    }

    /// Writes message 1 (`e, es, s, ss`, then the encrypted payload) into exactly
    /// `payload.count + 96` bytes; uses the entropy once, for the ephemeral key.
    /// - Throws: ``NoiseError/lowOrderPoint`` when the responder's static key is of low order.
    public func writeMessage1(
        payload: UnsafeRawBufferPointer, into message: UnsafeMutableRawBufferPointer, entropy: inout some EntropySource
    ) throws(NoiseError) -> NoiseAwaitingResponse {
        var next = state
        try next.writeMessage1(payload: payload, into: message, entropy: &entropy)
        return NoiseAwaitingResponse(state: next)
    }
}

/// The initiator after message 1: waits for message 2. Reading one leaves this value as it was,
/// so a forged response costs nothing but the attempt.
public struct NoiseAwaitingResponse: Sendable {
    fileprivate let state: NoiseHandshakeState

    /// The handshake hash so far.
    public var handshakeHash: Bytes32 { state.handshakeHash }

    /// Reads message 2 and decrypts its payload into exactly `message.count - 48` bytes.
    /// - Throws: ``NoiseError/decryptionFailed`` on a wrong key or PSK or a corrupted message.
    public func readMessage2(
        _ message: UnsafeRawBufferPointer, payloadInto payload: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) -> NoiseCompleted {
        var next = state
        try next.readMessage2(message, payloadInto: payload)
        return NoiseCompleted(state: next)
    }
}

/// The responder before message 1.
public struct NoiseResponder: Sendable {
    private let state: NoiseHandshakeState

    /// Starts the responder's side; `presharedKey` may instead be set once the initiator is
    /// known (``NoiseInitiatorIdentified/setPresharedKey(_:)``).
    public init(
        pattern: NoiseHandshakeState.Pattern, prologue: UnsafeRawBufferPointer, localStatic: SecretKey,
        presharedKey: SecretKey? = nil
    ) {
        state = NoiseHandshakeState(
            pattern: pattern, role: .responder, prologue: prologue, localStatic: localStatic, presharedKey: presharedKey)
    }

    /// Reads `e`, `es` and the encrypted `s` from the first 80 bytes of message 1: who initiates.
    /// - Throws: ``NoiseError/decryptionFailed`` when `s` does not decrypt (not for us, or another
    ///   prologue); ``NoiseError/lowOrderPoint`` for a low-order ephemeral.
    public func readMessage1Identity(_ prefix: UnsafeRawBufferPointer) throws(NoiseError) -> NoiseInitiatorIdentified {
        var next = state
        let initiator = try next.readMessage1Identity(prefix)
        return NoiseInitiatorIdentified(state: next, initiatorStatic: initiator)
    }

    /// Reads all of message 1 (for a responder that knows its PSK in advance).
    public func readMessage1(
        _ message: UnsafeRawBufferPointer, payloadInto payload: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) -> NoiseAnswering {
        guard message.count >= NoiseHandshakeState.message1Overhead else { throw .wrongLength }
        let prefix = NoiseHandshakeState.message1PrefixByteCount
        return try readMessage1Identity(UnsafeRawBufferPointer(rebasing: message[0..<prefix]))
            .readMessage1Payload(UnsafeRawBufferPointer(rebasing: message[prefix...]), into: payload)
    }
}

/// The responder halfway through message 1: the initiator's static key is known.
public struct NoiseInitiatorIdentified: Sendable {
    private var state: NoiseHandshakeState
    /// The initiator's static public key, for looking the peer up.
    public let initiatorStatic: Bytes32

    fileprivate init(state: NoiseHandshakeState, initiatorStatic: Bytes32) {
        self.state = state
        self.initiatorStatic = initiatorStatic
    }

    /// Sets the PSK of the peer just identified, for the `psk` token of message 2.
    public mutating func setPresharedKey(_ key: SecretKey) { state.setPresharedKey(key) }

    /// `ss`, then decrypts the payload (message 1 from byte 80 on) into exactly
    /// `ciphertext.count - 16` bytes.
    public func readMessage1Payload(
        _ ciphertext: UnsafeRawBufferPointer, into payload: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) -> NoiseAnswering {
        var next = state
        try next.readMessage1Payload(ciphertext, into: payload)
        return NoiseAnswering(state: next, initiatorStatic: initiatorStatic)
    }
}

/// The responder after message 1: ready to write message 2.
public struct NoiseAnswering: Sendable {
    fileprivate let state: NoiseHandshakeState
    /// The initiator's static public key.
    public let initiatorStatic: Bytes32

    /// The handshake hash so far.
    public var handshakeHash: Bytes32 { state.handshakeHash }

    /// Writes message 2 (`e, ee, se`, `psk` for IKpsk2, then the encrypted payload) into exactly
    /// `payload.count + 48` bytes; uses the entropy once, for the ephemeral key.
    public func writeMessage2(
        payload: UnsafeRawBufferPointer, into message: UnsafeMutableRawBufferPointer, entropy: inout some EntropySource
    ) throws(NoiseError) -> NoiseCompleted {
        var next = state
        try next.writeMessage2(payload: payload, into: message, entropy: &entropy)
        return NoiseCompleted(state: next)
    }
}

/// Both messages done: the handshake hash and the transport keys.
public struct NoiseCompleted: Sendable {
    fileprivate let state: NoiseHandshakeState

    /// The handshake hash `h`, the value both sides can use for channel binding.
    public var handshakeHash: Bytes32 { state.handshakeHash }

    /// `Split()` from this side's point of view: the key it sends with and the key it receives with.
    public func split() -> (send: SecretKey, receive: SecretKey) { state.split() }
}
