// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The Noise symmetric state for the `25519_ChaChaPoly_BLAKE2s` suite: chaining key, handshake
/// hash and the optional cipher key with its nonce (Noise spec sections 5.1 and 5.2).
///
/// A value type, owned by one handshake; not thread-safe. Keys are ``SecretKey``s, which zero
/// themselves when dropped; a handshake allocates a few of them, never a packet.
public struct NoiseSymmetricState: Sendable {
    /// `ck`: the chaining key, fed to the HKDF by every `MixKey`.
    public private(set) var chainingKey: SecretKey
    /// `h`: the hash of everything sent and received so far (the transcript).
    public private(set) var handshakeHash: Bytes32
    /// `k`, empty until the first `MixKey`.
    private var cipherKey: SecretKey?
    /// `n`, the ChaCha20-Poly1305 counter nonce under `k`; reset to 0 by every `MixKey`.
    private var nonce: UInt64 = 0

    /// `InitializeSymmetric(protocol_name)`: `h` is the name padded with zeros when it fits in 32
    /// bytes, else `HASH(name)`; `ck = h` (Noise spec section 5.2).
    public init(protocolName: String) {
        var name = protocolName
        let h: Bytes32 = name.withUTF8 { utf8 in
            if utf8.count <= 32 {
                var padded = Bytes32()
                padded.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(utf8)) }
                return padded
            }
            return BLAKE2s.hash(UnsafeRawBufferPointer(utf8))
        }
        handshakeHash = h
        chainingKey = h.withUnsafeBytes { SecretKey(copying: $0) }
    }

    /// True once a `MixKey` has set a cipher key, so that payloads are encrypted.
    public var hasCipherKey: Bool { cipherKey != nil }

    /// `MixHash(data)`: `h = HASH(h || data)`.
    public mutating func mixHash(_ data: UnsafeRawBufferPointer) {
        handshakeHash = handshakeHash.withUnsafeBytes { BLAKE2s.hash($0, data) }
    }

    /// `MixHash` of a 32-byte value.
    public mutating func mixHash(_ value: Bytes32) {
        value.withUnsafeBytes { mixHash($0) }
    }

    /// `MixKey(input)`: `ck, k = HKDF(ck, input, 2)`, `n = 0`.
    public mutating func mixKey(_ input: UnsafeRawBufferPointer) {
        let outputs = BLAKE2s.hkdf(chainingKey: chainingKey, input: input, count: 2)
        chainingKey = outputs[0]
        cipherKey = outputs[1]
        nonce = 0
    }

    /// `MixKey` of a secret (a Diffie-Hellman result).
    public mutating func mixKey(_ secret: SecretKey) {
        secret.withUnsafeBytes { mixKey($0) }
    }

    /// `MixKey` of a public value (an ephemeral key, for the psk modifier).
    public mutating func mixKey(_ value: Bytes32) {
        value.withUnsafeBytes { mixKey($0) }
    }

    /// `MixKeyAndHash(input)`: `ck, temp_h, k = HKDF(ck, input, 3)`, `MixHash(temp_h)`, `n = 0`.
    /// Noise's `psk` token (Noise spec section 9).
    public mutating func mixKeyAndHash(_ input: SecretKey) {
        let outputs = input.withUnsafeBytes { BLAKE2s.hkdf(chainingKey: chainingKey, input: $0, count: 3) }
        chainingKey = outputs[0]
        outputs[1].withUnsafeBytes { mixHash($0) }
        cipherKey = outputs[2]
        nonce = 0
    }

    /// `EncryptAndHash(plaintext)`: seals with `k`, nonce `n` and `h` as associated data, then
    /// mixes the ciphertext into `h`; without a key the plaintext is copied and mixed as is.
    ///
    /// - Parameters:
    ///   - plaintext: the bytes to protect.
    ///   - output: exactly `plaintext.count + 16` bytes with a key, `plaintext.count` without.
    public mutating func encryptAndHash(_ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        if let key = cipherKey {
            precondition(output.count == plaintext.count + ChaChaPoly.tagByteCount,
                         "EncryptAndHash output must be plaintext + 16 bytes")
            handshakeHash.withUnsafeBytes { ad in
                ChaChaPoly.seal(plaintext, into: output, key: key, counter: nonce, authenticating: ad)
            }
            nonce += 1
        } else {
            precondition(output.count == plaintext.count, "EncryptAndHash output must be the plaintext's size")
            if plaintext.count > 0 { output.baseAddress!.copyMemory(from: plaintext.baseAddress!, byteCount: plaintext.count) }
        }
        mixHash(UnsafeRawBufferPointer(output))
    }

    /// `DecryptAndHash(ciphertext)`: opens with `k`, nonce `n` and `h` as associated data, then mixes
    /// the ciphertext into `h`. Nothing changes when authentication fails.
    ///
    /// - Parameters:
    ///   - ciphertext: ciphertext and tag with a key; plaintext without.
    ///   - output: exactly `ciphertext.count - 16` bytes with a key, `ciphertext.count` without.
    /// - Returns: false when the tag did not verify (the state is unchanged, `output` zeroed).
    public mutating func decryptAndHash(
        _ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) -> Bool {
        if let key = cipherKey {
            guard ciphertext.count >= ChaChaPoly.tagByteCount,
                  output.count == ciphertext.count - ChaChaPoly.tagByteCount else { return false }
            let ok = handshakeHash.withUnsafeBytes { ad in
                ChaChaPoly.open(ciphertext, into: output, key: key, counter: nonce, authenticating: ad)
            }
            guard ok else { return false }
            nonce += 1
        } else {
            guard output.count == ciphertext.count else { return false }
            if ciphertext.count > 0 { output.baseAddress!.copyMemory(from: ciphertext.baseAddress!, byteCount: ciphertext.count) }
        }
        mixHash(ciphertext)
        return true
    }

    /// `Split()`: the two transport keys `HKDF(ck, empty, 2)`, in order: the initiator's sending
    /// key, then the responder's sending key.
    public func split() -> (SecretKey, SecretKey) {
        let outputs = BLAKE2s.hkdf(chainingKey: chainingKey, input: UnsafeRawBufferPointer(start: nil, count: 0), count: 2)
        return (outputs[0], outputs[1])
    }
}
