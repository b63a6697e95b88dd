// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// AES-256-GCM with WireGuard's nonce layout (4 zero bytes, then a 64-bit little-endian counter),
/// backed by libsodium's `crypto_aead_aes256gcm_*_detached_afternm`.
///
/// libsodium implements it only with the CPU's AES and carry-less multiply instructions
/// (AES-NI and PCLMULQDQ on x86-64); ``isAvailable`` says whether this CPU has them, and nothing
/// here may be called when it does not. Only vpnd-to-vpnd sessions with `Cipher = aes256gcm` use it.
public enum AES256GCM {
    /// Size of the GHASH tag in bytes.
    public static let tagByteCount = 16

    /// Whether libsodium can run AES-256-GCM on this CPU.
    public static var isAvailable: Bool {
        Sodium.initialise()
        return crypto_aead_aes256gcm_is_available() == 1
    }

    /// A session key with its AES key schedule and GHASH key precomputed (`beforenm`), so that
    /// sealing a packet does not expand the key again. Made once per session, never per packet;
    /// the 512-byte state is zeroed when the last reference goes, as ``SecretKey``'s bytes are.
    public final class PreparedKey: @unchecked Sendable {
        // @unchecked Sendable: `state` is written only in init and zeroed in deinit; sealing and
        // opening only read it.
        @usableFromInline let state: UnsafeMutablePointer<crypto_aead_aes256gcm_state>

        /// Prepares `key`. The CPU must support AES-256-GCM (``AES256GCM/isAvailable``): a
        /// programmer error traps.
        public init(_ key: SecretKey) {
            precondition(AES256GCM.isAvailable, "AES-256-GCM is not available on this CPU")
            // libsodium wants the state 16-byte aligned (CRYPTO_ALIGN(16)); ask for that explicitly.
            let size = MemoryLayout<crypto_aead_aes256gcm_state>.size
            state = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: max(16, MemoryLayout<crypto_aead_aes256gcm_state>.alignment))
                .bindMemory(to: crypto_aead_aes256gcm_state.self, capacity: 1)
            key.withUnsafeBytes { bytes in
                _ = crypto_aead_aes256gcm_beforenm(state, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }

        deinit {
            sodium_memzero(state, MemoryLayout<crypto_aead_aes256gcm_state>.size)
            state.deallocate()
        }
    }

    /// Encrypts `message` in place under the nonce for `counter` and writes the tag to `tag`.
    @inlinable
    public static func seal(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, key: PreparedKey, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        var nonce = ChaChaPoly.wireGuardNonce(counter: counter)
        withUnsafeBytes(of: &nonce) { nonceBytes in
            let text = (message.baseAddress ?? tag).assumingMemoryBound(to: UInt8.self)
            _ = crypto_aead_aes256gcm_encrypt_detached_afternm(
                text, tag.assumingMemoryBound(to: UInt8.self), nil, text, UInt64(message.count),
                associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                nil, nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), key.state)
        }
    }

    /// Verifies `tag` and, only if it matches, decrypts `message` in place.
    ///
    /// - Returns: true when the tag was valid.
    @inlinable
    public static func open(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer, key: PreparedKey, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Bool {
        var nonce = ChaChaPoly.wireGuardNonce(counter: counter)
        return withUnsafeBytes(of: &nonce) { nonceBytes in
            let text = (message.baseAddress ?? UnsafeMutableRawPointer(mutating: tag)).assumingMemoryBound(to: UInt8.self)
            return crypto_aead_aes256gcm_decrypt_detached_afternm(
                text, nil, text, UInt64(message.count), tag.assumingMemoryBound(to: UInt8.self),
                associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self), key.state) == 0
        }
    }
}

/// The AEAD that protects a session's transport data (the handshake always uses
/// ChaCha20-Poly1305 and BLAKE2s, as Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s says).
public enum TransportCipher: String, Sendable, Hashable, CaseIterable {
    /// ChaCha20-Poly1305: WireGuard's, the default, the only one a WireGuard peer speaks.
    case chaCha20Poly1305 = "chacha20poly1305"
    /// AES-256-GCM: vpnd's option for two vpnd ends on CPUs with AES instructions.
    case aes256GCM = "aes256gcm"

    /// Whether this CPU can run the cipher.
    public var isAvailable: Bool {
        switch self {
        case .chaCha20Poly1305: return true
        case .aes256GCM: return AES256GCM.isAvailable
        }
    }
}

/// One direction's session key, ready for its cipher: the 32 bytes, and for AES-256-GCM the
/// precomputed key schedule. Seals and opens with whichever cipher the session negotiated.
public struct TransportKey: Sendable {
    /// The 32 key bytes from the handshake.
    public let secret: SecretKey
    /// The prepared AES key; nil for ChaCha20-Poly1305.
    @usableFromInline let aes: AES256GCM.PreparedKey?

    /// `secret` for `cipher` (AES-256-GCM precomputes its key schedule here, once per session).
    public init(_ secret: SecretKey, cipher: TransportCipher = .chaCha20Poly1305) {
        self.secret = secret
        aes = cipher == .aes256GCM ? AES256GCM.PreparedKey(secret) : nil
    }

    /// The cipher this key seals with.
    public var cipher: TransportCipher { aes == nil ? .chaCha20Poly1305 : .aes256GCM }

    /// Encrypts `message` in place and writes the 16-byte tag to `tag`.
    @inlinable
    public func seal(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        if let aes {
            AES256GCM.seal(message, tag: tag, key: aes, counter: counter, authenticating: associatedData)
        } else {
            ChaChaPoly.seal(message, tag: tag, key: secret, counter: counter, authenticating: associatedData)
        }
    }

    /// Verifies `tag` and, only if it matches, decrypts `message` in place.
    @inlinable
    public func open(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Bool {
        if let aes {
            return AES256GCM.open(message, tag: tag, key: aes, counter: counter, authenticating: associatedData)
        }
        return ChaChaPoly.open(message, tag: tag, key: secret, counter: counter, authenticating: associatedData)
    }
}
