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

    /// Size of the IETF nonce in bytes (RFC 8439 section 2.8).
    public static let nonceByteCount = 12

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
        var nonce = wireGuardNonce(counter: counter)
        withUnsafeBytes(of: &nonce) { nonceBytes in
            seal(message, tag: tag, key: key, nonce: nonceBytes, authenticating: associatedData)
        }
    }

    /// Verifies `tag` and, only if it matches, decrypts `message` in place.
    ///
    /// - Returns: true when the tag was valid; on false `message` is zeroed (libsodium clears it).
    @inlinable
    public static func open(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer, key: SecretKey, counter: UInt64,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Bool {
        var nonce = wireGuardNonce(counter: counter)
        return withUnsafeBytes(of: &nonce) { nonceBytes in
            open(message, tag: tag, key: key, nonce: nonceBytes, authenticating: associatedData)
        }
    }

    /// WireGuard's nonce for `counter`: 32 zero bits, then the counter as 64-bit little endian.
    @inlinable
    static func wireGuardNonce(counter: UInt64) -> (UInt32, UInt32, UInt32) {
        (0, UInt32(truncatingIfNeeded: counter).littleEndian, UInt32(truncatingIfNeeded: counter >> 32).littleEndian)
    }

    /// Encrypts `message` in place under a full 12-byte IETF nonce and writes the tag to `tag`.
    ///
    /// The general form of ``seal(_:tag:key:counter:authenticating:)``, which WireGuard's counter
    /// nonce delegates to; used directly for RFC 8439's test vectors.
    ///
    /// - Parameters:
    ///   - message: plaintext, replaced by ciphertext of the same length.
    ///   - tag: 16 writable bytes.
    ///   - key: the 32-byte key.
    ///   - nonce: exactly 12 bytes; never reuse one under the same key.
    ///   - associatedData: authenticated, not encrypted.
    @inlinable
    public static func seal(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, key: SecretKey,
        nonce: UnsafeRawBufferPointer,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        precondition(nonce.count == nonceByteCount, "ChaChaPoly nonce must be 12 bytes")
        key.withUnsafeBytes { keyBytes in
            // An empty message (a keepalive) may have no base address; libsodium reads none of it then.
            let text = (message.baseAddress ?? tag).assumingMemoryBound(to: UInt8.self)
            _ = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                text, tag.assumingMemoryBound(to: UInt8.self), nil, text, UInt64(message.count),
                associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                nil,
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Verifies `tag` under a full 12-byte IETF nonce and, only if it matches, decrypts `message` in place.
    ///
    /// - Returns: true when the tag was valid; on false `message` is zeroed (libsodium clears it).
    @inlinable
    public static func open(
        _ message: UnsafeMutableRawBufferPointer, tag: UnsafeRawPointer, key: SecretKey,
        nonce: UnsafeRawBufferPointer,
        authenticating associatedData: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) -> Bool {
        precondition(nonce.count == nonceByteCount, "ChaChaPoly nonce must be 12 bytes")
        return key.withUnsafeBytes { keyBytes -> Bool in
            let text = (message.baseAddress ?? UnsafeMutableRawPointer(mutating: tag)).assumingMemoryBound(to: UInt8.self)
            return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                text, nil, text, UInt64(message.count),
                tag.assumingMemoryBound(to: UInt8.self),
                associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
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
    /// - Returns: true when the tag was valid; false, with `output` zeroed, when it was not or when
    ///   `ciphertext` is too short to hold a tag or does not fit `output`.
    public static func open(
        _ ciphertext: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, key: SecretKey,
        counter: UInt64, authenticating associatedData: UnsafeRawBufferPointer
    ) -> Bool {
        guard ciphertext.count >= tagByteCount, output.count == ciphertext.count - tagByteCount else {
            secureZero(output)
            return false
        }
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
