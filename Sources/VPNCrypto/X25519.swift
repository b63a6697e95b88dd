// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// Curve25519 Diffie-Hellman (RFC 7748) through libsodium's `crypto_scalarmult`.
public enum X25519 {
    /// A new private key: 32 random bytes, clamped as RFC 7748 and `wg genkey` do.
    public static func generatePrivateKey(using entropy: inout some EntropySource) -> SecretKey {
        SecretKey(filling: { bytes in
            entropy.fill(bytes)
            clamp(bytes)
        })
    }

    /// Clamps a scalar in place: clears bits 0-2 and 255, sets bit 254.
    public static func clamp(_ scalar: UnsafeMutableRawBufferPointer) {
        precondition(scalar.count == 32, "an X25519 scalar has 32 bytes")
        scalar[0] &= 248
        scalar[31] = (scalar[31] & 127) | 64
    }

    /// The public key of `privateKey`. libsodium clamps the scalar itself, so an unclamped
    /// private key gives the same public key as its clamped form, as with `wg pubkey`.
    public static func publicKey(for privateKey: SecretKey) -> Bytes32 {
        Sodium.initialise()
        var out = Bytes32()
        out.withUnsafeMutableBytes { pub in
            privateKey.withUnsafeBytes { priv in
                _ = crypto_scalarmult_base(
                    pub.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    priv.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return out
    }

    /// The shared secret of `privateKey` and `publicKey`.
    ///
    /// - Throws: ``CryptoError/lowOrderPoint`` when the result is all zeros.
    public static func sharedSecret(privateKey: SecretKey, publicKey: Bytes32) throws(CryptoError) -> SecretKey {
        Sodium.initialise()
        var status: Int32 = 0
        let secret = SecretKey(filling: { out in
            publicKey.withUnsafeBytes { pub in
                privateKey.withUnsafeBytes { priv in
                    status = crypto_scalarmult(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        priv.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        pub.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        })
        // libsodium returns -1 when the output is all zeros; check both, in constant time.
        if status != 0 || secret.isZero { throw .lowOrderPoint }
        return secret
    }
}
