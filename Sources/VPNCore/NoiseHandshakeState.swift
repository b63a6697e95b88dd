// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Why a Noise handshake step failed.
public enum NoiseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A message or payload buffer has the wrong size for this step.
    case wrongLength
    /// An AEAD tag did not verify: wrong keys, wrong prologue, wrong PSK or a corrupted message.
    case decryptionFailed
    /// A Diffie-Hellman result was all zeros: the other side sent a low-order public key.
    case lowOrderPoint

    public var description: String {
        switch self {
        case .wrongLength: return "noise: message has the wrong length for this handshake step"
        case .decryptionFailed: return "noise: decryption failed (wrong key, PSK, prologue or a corrupted message)"
        case .lowOrderPoint: return "noise: a public key is a low-order point (shared secret is zero)"
        }
    }
}

/// The handshake state of the Noise `IK` pattern and its `IKpsk2` variant, with the
/// `25519_ChaChaPoly_BLAKE2s` suite (Noise spec sections 5.3, 7.5 and 9).
///
/// ```
/// IK:                      IKpsk2:
///   <- s                     <- s
///   ...                      ...
///   -> e, es, s, ss          -> e, es, s, ss
///   <- e, ee, se             <- e, ee, se, psk
/// ```
///
/// With the psk modifier every `e` token also does `MixKey(e.public)` (Noise spec section 9.2).
/// Ephemeral keys come from an injected ``EntropySource`` (one 32-byte fill each), so test
/// vectors can fix them. WireGuard's handshake is `IKpsk2` with its identifier as the prologue,
/// a TAI64N timestamp as the first payload and an empty second payload.
///
/// The tokens and their order within each message. The steps are reached only through the
/// per-state types of NoiseHandshake.swift (``NoiseInitiator``, ``NoiseResponder`` and what they
/// return), which make a step out of order impossible to write. A value type; not thread-safe.
public struct NoiseHandshakeState: Sendable {
    /// The handshake patterns this type runs.
    public enum Pattern: Sendable, Hashable {
        /// `Noise_IK_25519_ChaChaPoly_BLAKE2s`.
        case ik
        /// `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s`, WireGuard's construction.
        case ikpsk2

        /// The full Noise protocol name, hashed into the initial state.
        public var protocolName: String {
            switch self {
            case .ik: return "Noise_IK_25519_ChaChaPoly_BLAKE2s"
            case .ikpsk2: return "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
            }
        }

        var usesPSK: Bool { self == .ikpsk2 }
    }

    /// Which side of the handshake this state plays.
    public enum Role: Sendable, Hashable {
        case initiator
        case responder
    }

    /// Byte count of the first message before its payload: `e` (32) and the encrypted `s` (48).
    public static let message1PrefixByteCount = 80
    /// Overhead of message 1 on top of its payload: `e`, encrypted `s` and the payload's tag.
    public static let message1Overhead = 96
    /// Overhead of message 2 on top of its payload: `e` and the payload's tag.
    public static let message2Overhead = 48

    private var symmetric: NoiseSymmetricState
    private let pattern: Pattern
    private let role: Role
    private let localStatic: SecretKey
    private let localStaticPublic: Bytes32
    /// Set by writeEphemeral (message 1 for an initiator, message 2 for a responder).
    private var localEphemeral = SecretKey.zero()
    private var localEphemeralPublic = Bytes32()
    /// Known in advance by an initiator, learnt from message 1 by a responder.
    private var remoteStatic: Bytes32
    private var remoteEphemeral = Bytes32()
    private var presharedKey: SecretKey

    /// Starts a handshake: `InitializeSymmetric`, `MixHash(prologue)`, then the pre-message
    /// `<- s` as `MixHash(responder's static public key)`.
    ///
    /// - Parameters:
    ///   - pattern: `IK` or `IKpsk2`.
    ///   - role: initiator or responder.
    ///   - prologue: bytes both sides must agree on (WireGuard: its identifier string).
    ///   - localStatic: this side's static private key.
    ///   - remoteStatic: the responder's static public key; required for an initiator, ignored by a responder.
    ///   - presharedKey: the PSK for `IKpsk2` (nil: 32 zero bytes, as WireGuard without a PSK); a
    ///     responder may set it later with ``setPresharedKey(_:)`` once it knows the initiator.
    init(
        pattern: Pattern, role: Role, prologue: UnsafeRawBufferPointer, localStatic: SecretKey,
        remoteStatic: Bytes32? = nil, presharedKey: SecretKey? = nil
    ) {
        self.pattern = pattern
        self.role = role
        self.localStatic = localStatic
        self.localStaticPublic = X25519.publicKey(for: localStatic)
        self.presharedKey = presharedKey ?? SecretKey.zero()
        symmetric = NoiseSymmetricState(protocolName: pattern.protocolName)
        symmetric.mixHash(prologue)
        switch role {
        case .initiator:
            // NoiseInitiator always passes it.
            let remote = remoteStatic ?? Bytes32()
            self.remoteStatic = remote
            symmetric.mixHash(remote)
        case .responder:
            self.remoteStatic = Bytes32()
            symmetric.mixHash(localStaticPublic)
        }
    }

    /// The handshake hash `h`; after message 2 it is the value both sides can use for channel binding.
    var handshakeHash: Bytes32 { symmetric.handshakeHash }

    /// Sets the PSK used by the `psk` token (a responder learns which peer it talks to from message 1).
    mutating func setPresharedKey(_ key: SecretKey) {
        presharedKey = key
    }

    // MARK: tokens

    private mutating func writeEphemeral(into out: UnsafeMutableRawBufferPointer, entropy: inout some EntropySource) {
        let ephemeral = X25519.generatePrivateKey(using: &entropy)
        localEphemeral = ephemeral
        localEphemeralPublic = X25519.publicKey(for: ephemeral)
        localEphemeralPublic.withUnsafeBytes { out.copyMemory(from: $0) }
        symmetric.mixHash(localEphemeralPublic)
        if pattern.usesPSK { symmetric.mixKey(localEphemeralPublic) }
    }

    private mutating func readEphemeral(_ bytes: UnsafeRawBufferPointer) {
        remoteEphemeral = Bytes32(copying: bytes)
        symmetric.mixHash(remoteEphemeral)
        if pattern.usesPSK { symmetric.mixKey(remoteEphemeral) }
    }

    private mutating func mixDH(_ privateKey: SecretKey, _ publicKey: Bytes32) throws(NoiseError) {
        let shared: SecretKey
        do {
            shared = try X25519.sharedSecret(privateKey: privateKey, publicKey: publicKey)
        } catch {
            throw .lowOrderPoint
        }
        symmetric.mixKey(shared)
    }

    // MARK: message 1: -> e, es, s, ss

    /// Initiator: writes message 1 (`e, es, s, ss`, then the encrypted payload).
    ///
    /// - Parameters:
    ///   - payload: the payload (WireGuard: the 12-byte TAI64N timestamp).
    ///   - message: exactly `payload.count + 96` bytes.
    ///   - entropy: supplies the ephemeral private key (one 32-byte fill).
    /// - Throws: ``NoiseError/lowOrderPoint`` when the responder's static key is of low order.
    mutating func writeMessage1(
        payload: UnsafeRawBufferPointer, into message: UnsafeMutableRawBufferPointer,
        entropy: inout some EntropySource
    ) throws(NoiseError) {
        precondition(message.count == payload.count + Self.message1Overhead, "message 1 must be payload + 96 bytes")
        writeEphemeral(into: UnsafeMutableRawBufferPointer(rebasing: message[0..<32]), entropy: &entropy)
        try mixDH(localEphemeral, remoteStatic)  // es
        localStaticPublic.withUnsafeBytes { s in
            symmetric.encryptAndHash(s, into: UnsafeMutableRawBufferPointer(rebasing: message[32..<80]))
        }
        try mixDH(localStatic, remoteStatic)  // ss
        symmetric.encryptAndHash(payload, into: UnsafeMutableRawBufferPointer(rebasing: message[80...]))
    }

    /// Responder, first half of message 1: reads `e`, `es` and the encrypted `s`, and returns the
    /// initiator's static public key so that the caller can look the peer up (and set its PSK)
    /// before ``readMessage1Payload(_:into:)``.
    ///
    /// - Parameter prefix: the first 80 bytes of message 1.
    /// - Throws: ``NoiseError/decryptionFailed`` when `s` does not decrypt (not for us, or another
    ///   prologue); ``NoiseError/lowOrderPoint`` for a low-order ephemeral.
    mutating func readMessage1Identity(_ prefix: UnsafeRawBufferPointer) throws(NoiseError) -> Bytes32 {
        guard prefix.count == Self.message1PrefixByteCount else { throw .wrongLength }
        readEphemeral(UnsafeRawBufferPointer(rebasing: prefix[0..<32]))
        try mixDH(localStatic, remoteEphemeral)  // es
        var initiatorStatic = Bytes32()
        let ok = initiatorStatic.withUnsafeMutableBytes { out in
            symmetric.decryptAndHash(UnsafeRawBufferPointer(rebasing: prefix[32..<80]), into: out)
        }
        guard ok else { throw .decryptionFailed }
        remoteStatic = initiatorStatic
        return initiatorStatic
    }

    /// Responder, second half of message 1: `ss`, then decrypts the payload.
    ///
    /// - Parameters:
    ///   - ciphertext: message 1 from byte 80 on (payload and tag).
    ///   - payload: exactly `ciphertext.count - 16` bytes.
    mutating func readMessage1Payload(
        _ ciphertext: UnsafeRawBufferPointer, into payload: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard ciphertext.count >= ChaChaPoly.tagByteCount,
              payload.count == ciphertext.count - ChaChaPoly.tagByteCount else { throw .wrongLength }
        try mixDH(localStatic, remoteStatic)  // ss
        guard symmetric.decryptAndHash(ciphertext, into: payload) else { throw .decryptionFailed }
    }

    // MARK: message 2: <- e, ee, se [, psk]

    /// Responder: writes message 2 (`e, ee, se`, `psk` for IKpsk2, then the encrypted payload).
    ///
    /// - Parameters:
    ///   - payload: the payload (WireGuard: empty).
    ///   - message: exactly `payload.count + 48` bytes.
    ///   - entropy: supplies the ephemeral private key (one 32-byte fill).
    mutating func writeMessage2(
        payload: UnsafeRawBufferPointer, into message: UnsafeMutableRawBufferPointer,
        entropy: inout some EntropySource
    ) throws(NoiseError) {
        precondition(message.count == payload.count + Self.message2Overhead, "message 2 must be payload + 48 bytes")
        writeEphemeral(into: UnsafeMutableRawBufferPointer(rebasing: message[0..<32]), entropy: &entropy)
        try mixDH(localEphemeral, remoteEphemeral)  // ee
        try mixDH(localEphemeral, remoteStatic)  // se
        if pattern.usesPSK { symmetric.mixKeyAndHash(presharedKey) }
        symmetric.encryptAndHash(payload, into: UnsafeMutableRawBufferPointer(rebasing: message[32...]))
    }

    /// Initiator: reads message 2 and decrypts its payload.
    ///
    /// - Parameters:
    ///   - message: the whole message 2.
    ///   - payload: exactly `message.count - 48` bytes.
    /// - Throws: ``NoiseError/decryptionFailed`` on a wrong key or PSK or a corrupted message.
    mutating func readMessage2(
        _ message: UnsafeRawBufferPointer, payloadInto payload: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) {
        guard message.count >= Self.message2Overhead,
              payload.count == message.count - Self.message2Overhead else { throw .wrongLength }
        readEphemeral(UnsafeRawBufferPointer(rebasing: message[0..<32]))
        try mixDH(localEphemeral, remoteEphemeral)  // ee
        try mixDH(localStatic, remoteEphemeral)  // se
        if pattern.usesPSK { symmetric.mixKeyAndHash(presharedKey) }
        guard symmetric.decryptAndHash(UnsafeRawBufferPointer(rebasing: message[32...]), into: payload) else {
            throw .decryptionFailed
        }
    }

    // MARK: split

    /// `Split()` from this side's point of view: the key it sends with and the key it receives with.
    func split() -> (send: SecretKey, receive: SecretKey) {
        let (initiatorToResponder, responderToInitiator) = symmetric.split()
        switch role {
        case .initiator: return (initiatorToResponder, responderToInitiator)
        case .responder: return (responderToInitiator, initiatorToResponder)
        }
    }
}
