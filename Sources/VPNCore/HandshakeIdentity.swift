// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// This host's side of WireGuard's handshake: its static key pair, the mode it runs in, and the
/// values derived from its public key that never change (whitepaper 5.4).
///
/// The handshake itself is `Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s` with the mode's identifier as
/// the Noise prologue. Every function here is pure: ephemeral keys come from the injected
/// ``EntropySource``, times are passed in, messages are written into caller-provided buffers.
/// Immutable and `Sendable`; share one per interface.
public struct HandshakeIdentity: Sendable {
    /// What the tunnel carries, which selects the identifier hashed into the handshake.
    public enum Mode: Sendable, Hashable, CaseIterable {
        /// IP packets: WireGuard's own identifier, so vpnd is wire-compatible with WireGuard.
        case tun
        /// Ethernet frames: vpnd's own identifier, so a tap peer and a tun peer (or a WireGuard
        /// peer) never complete a handshake; the responder drops the initiation as `handshakeFailed`.
        case tap

        /// The identifier used as the Noise prologue (whitepaper 5.4: `Identifier`) with
        /// WireGuard's ChaCha20-Poly1305 transport data.
        public var identifier: String { identifier(cipher: .chaCha20Poly1305) }

        /// The identifier for this mode with `cipher` protecting the transport data. Each pair
        /// has its own, so two ends that differ in Mode or in Cipher never complete a handshake
        /// (the responder drops the initiation as `handshakeFailed`), and nothing but the
        /// default pair can be mistaken for WireGuard.
        public func identifier(cipher: TransportCipher) -> String {
            switch (self, cipher) {
            case (.tun, .chaCha20Poly1305): return "WireGuard v1 zx2c4 Jason@zx2c4.com"
            case (.tap, .chaCha20Poly1305): return "vpnd v1 ethernet"
            case (.tun, .aes256GCM): return "vpnd v1 ip aes256gcm"
            case (.tap, .aes256GCM): return "vpnd v1 ethernet aes256gcm"
            }
        }
    }

    /// The Noise protocol name, WireGuard's `Construction` (whitepaper 5.4).
    public static let construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
    /// Label of the mac1 key: `HASH("mac1----" || public key)` (whitepaper 5.4.4).
    public static let mac1Label = "mac1----"
    /// Label of the cookie encryption key: `HASH("cookie--" || public key)` (whitepaper 5.4.7).
    public static let cookieLabel = "cookie--"

    /// The mode of this interface; with ``cipher`` it selects the identifier.
    public let mode: Mode
    /// The AEAD of transport data that sessions made with this identity use.
    public let cipher: TransportCipher
    /// The Noise prologue: ``Mode/identifier(cipher:)``.
    public var identifier: String { mode.identifier(cipher: cipher) }
    /// Our static private key.
    public let privateKey: SecretKey
    /// Our static public key.
    public let publicKey: Bytes32
    /// `HASH("mac1----" || our public key)`: the key of mac1 on every handshake message sent to us.
    public let mac1Key: Bytes32
    /// `HASH("cookie--" || our public key)`: the key our cookie replies are encrypted with.
    public let cookieKey: Bytes32

    /// An identity from a static private key.
    ///
    /// - Parameters:
    ///   - privateKey: the interface's X25519 private key (as `wg genkey` makes).
    ///   - mode: tun (WireGuard-compatible) or tap (vpnd only).
    ///   - cipher: the transport data AEAD; anything but ChaCha20-Poly1305 is vpnd only.
    public init(privateKey: SecretKey, mode: Mode = .tun, cipher: TransportCipher = .chaCha20Poly1305) {
        self.mode = mode
        self.cipher = cipher
        self.privateKey = privateKey
        publicKey = X25519.publicKey(for: privateKey)
        mac1Key = Self.labelledKey(Self.mac1Label, publicKey)
        cookieKey = Self.labelledKey(Self.cookieLabel, publicKey)
    }

    /// `HASH(label || key)`, the derivation of the mac1 key and of the cookie key.
    public static func labelledKey(_ label: String, _ key: Bytes32) -> Bytes32 {
        var text = label
        return text.withUTF8 { utf8 in
            key.withUnsafeBytes { BLAKE2s.hash(UnsafeRawBufferPointer(utf8), $0) }
        }
    }

    /// A fresh local index for a handshake: a random 32-bit value that `isInUse` does not reject.
    ///
    /// The caller's index table decides uniqueness (it knows the indexes of handshakes in flight
    /// and of live sessions); the index travels as the sender index of our message and comes back
    /// as the receiver index of the peer's replies and data.
    ///
    /// - Parameters:
    ///   - entropy: the source of the random values (4 bytes per attempt).
    ///   - isInUse: true for an index already taken.
    public static func newLocalIndex(
        using entropy: inout some EntropySource, isInUse: (UInt32) -> Bool = { _ in false }
    ) -> UInt32 {
        while true {
            let index = entropy.nextUInt32()
            if !isInUse(index) { return index }
        }
    }

    /// The initial Noise state of a handshake in which `responderStatic` answers: `ck = HASH(construction)`,
    /// `h = HASH(ck || identifier)`, `h = HASH(h || responder static)` (whitepaper 5.4.2).
    func noiseInitiator(remoteStatic: Bytes32, presharedKey: SecretKey?) -> NoiseInitiator {
        var prologue = identifier
        return prologue.withUTF8 { utf8 in
            NoiseInitiator(
                pattern: .ikpsk2, prologue: UnsafeRawBufferPointer(utf8), localStatic: privateKey,
                remoteStatic: remoteStatic, presharedKey: presharedKey)
        }
    }

    /// The responder's initial state (the same hash chain, our static key as the pre-message).
    func noiseResponder() -> NoiseResponder {
        var prologue = identifier
        return prologue.withUTF8 { utf8 in
            NoiseResponder(pattern: .ikpsk2, prologue: UnsafeRawBufferPointer(utf8), localStatic: privateKey)
        }
    }
}
