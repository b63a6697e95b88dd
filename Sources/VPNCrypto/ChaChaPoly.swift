// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// ChaCha20-Poly1305 IETF (RFC 8439) with WireGuard's nonce: 4 zero bytes, then a 64-bit
/// little-endian counter. Backed by libsodium's `crypto_aead_chacha20poly1305_ietf_*_detached`.
///
/// Sealing and opening work in place: libsodium documents that the message and ciphertext may
/// be the same buffer, and `ChaChaPolyTests` pins that behaviour.
public enum ChaChaPoly {
    /// Size of the Poly1305 tag in bytes.
    public static let tagByteCount = 16

    /// Encrypts `message` in place and writes the 16-byte tag to `tag`.
    ///
    /// - Parameters:
    ///   - message: plaintext, replaced by ciphertext of the same length.
    ///   - tag: 16 writable bytes, usually the tailroom right behind `message`.
    ///   - key: the 32-byte key.
    ///   - counter: the nonce counter; never reuse one under the same key.
    ///   - associatedData: authenticated, not encrypted.
    @inlinable
    public static func seal(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, key: SecretKey, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        var nonce: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: counter).littleEndian,
                                                UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        withUnsafeBytes(of: &nonce) { nonceBytes in
            key.withUnsafeBytes { keyBytes in
                // An empty message (a keepalive) may have no base address; libsodium reads none of it then.
                let text = (message.baseAddress ?? tag).assumingMemoryBound(to: UInt8.self)
                _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                    text, tag.assumingMemoryBound(to: UInt8.self), nil, text, UInt64(message.count),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nil,
                    nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    /// Verifies `tag` and, only if it matches, decrypts `message` in place.
    ///
    /// - Returns: true when the tag was valid; on false the contents of `message` are undefined.
    @inlinable
    public static func open(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer, key: SecretKey, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Bool {
        var nonce: (UInt32, UInt32, UInt32) = (0, UInt32(truncatingIfNeeded: counter).littleEndian,
                                                UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
        return withUnsafeBytes(of: &nonce) { nonceBytes in
            key.withUnsafeBytes { keyBytes -> Bool in
                let text = (message.baseAddress ?? UnsafeMutableRawPointer(mutating: tag)).assumingMemoryBound(to: UInt8.self)
                return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    text, nil, text, UInt64(message.count),
                    tag.assumingMemoryBound(to: UInt8.self),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nonceBytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
            }
        }
    }

    /// Seals `plaintext` into `output` (plaintext length + 16 bytes): ciphertext then tag.
    /// For handshake fields; the data path uses the in-place ``seal(_:tag:key:counter:authenticating:)``.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: SecretKey,
        counter: UInt64, authenticating associatedData: UnsafeRawBufferPointer
    ) {
        precondition(output.count == plaintext.count + tagByteCount, "ChaChaPoly output must be plaintext + 16 bytes")
        let body = UnsafeMutableRawBufferPointer(rebasing: output[0..<plaintext.count])
        if plaintext.count > 0 { body.baseAddress!.copyMemory(from: plaintext.baseAddress!, byteCount: plaintext.count) }
        seal(body, tag: output.baseAddress! + plaintext.count, key: key, counter: counter,
             authenticating: associatedData)
    }

    /// Opens `ciphertext` (ciphertext then 16-byte tag) into `output` (ciphertext length − 16).
    /// - Returns: true when the tag was valid; on false `output` is zeroed.
    public static func open(
        _ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: SecretKey,
        counter: UInt64, authenticating associatedData: UnsafeRawBufferPointer
    ) -> Bool {
        precondition(ciphertext.count >= tagByteCount && output.count == ciphertext.count - tagByteCount,
                     "ChaChaPoly output must be ciphertext - 16 bytes")
        if output.count > 0 { output.baseAddress!.copyMemory(from: ciphertext.baseAddress!, byteCount: output.count) }
        let ok = open(output, tag: ciphertext.baseAddress! + output.count, key: key, counter: counter,
                      authenticating: associatedData)
        if !ok { secureZero(output) }
        return ok
    }
}

/// XChaCha20-Poly1305 IETF with a 24-byte nonce, for WireGuard's cookie reply.
/// Backed by libsodium's `crypto_aead_xchacha20poly1305_ietf_*_detached`.
public enum XChaChaPoly {
    /// Size of the nonce in bytes.
    public static let nonceByteCount = 24

    /// Seals `plaintext` into `output` (plaintext length + 16): ciphertext then tag.
    public static func seal(
        _ plaintext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer
    ) {
        precondition(key.count == 32 && nonce.count == nonceByteCount, "XChaChaPoly key 32, nonce 24 bytes")
        precondition(output.count == plaintext.count + 16, "XChaChaPoly output must be plaintext + 16 bytes")
        _ = crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            output.baseAddress!.assumingMemoryBound(to: UInt8.self),
            (output.baseAddress! + plaintext.count).assumingMemoryBound(to: UInt8.self), nil,
            plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
            associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
            nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
            key.baseAddress!.assumingMemoryBound(to: UInt8.self))
    }

    /// Opens `ciphertext` (ciphertext then tag) into `output` (ciphertext length − 16).
    /// - Returns: true when the tag was valid.
    public static func open(
        _ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
        key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, authenticating associatedData: UnsafeRawBufferPointer
    ) -> Bool {
        precondition(key.count == 32 && nonce.count == nonceByteCount, "XChaChaPoly key 32, nonce 24 bytes")
        guard ciphertext.count >= 16, output.count == ciphertext.count - 16 else { return false }
        let scratch = UnsafeMutableRawPointer(mutating: ciphertext.baseAddress!)
        return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            (output.baseAddress ?? scratch).assumingMemoryBound(to: UInt8.self), nil,
            ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(output.count),
            (ciphertext.baseAddress! + output.count).assumingMemoryBound(to: UInt8.self),
            associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
            nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
            key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
    }
}
