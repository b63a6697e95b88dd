// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// The text form of 32-byte keys: standard padded base64, 44 characters, as `wg genkey`,
/// `wg pubkey` and `wg genpsk` print them, so keys move freely between vpnd and WireGuard.
///
/// Encoding and decoding go through libsodium's `sodium_bin2base64` / `sodium_base642bin`
/// (variant `sodium_base64_VARIANT_ORIGINAL`), which reject missing padding and non-zero
/// trailing bits, so every key has exactly one accepted spelling. Scratch bytes that held key
/// material are zeroed before they are released. Stateless and thread-safe.
public enum KeyEncoding {
    /// Length of an encoded key in characters: 32 bytes in padded base64.
    public static let encodedCount = 44

    /// The base64 text of a secret key (a private key or a pre-shared key).
    public static func encode(_ key: SecretKey) -> String {
        key.withUnsafeBytes { encode(bytes: $0) }
    }

    /// The base64 text of a public key.
    public static func encode(_ key: Bytes32) -> String {
        key.withUnsafeBytes { encode(bytes: $0) }
    }

    /// Decodes a private key or a pre-shared key.
    ///
    /// Surrounding spaces, tabs and line breaks are ignored, so a key file ending in a newline reads fine.
    ///
    /// - Throws: ``CryptoError/invalidKeyEncoding(_:)`` saying what is wrong: empty, not base64,
    ///   or decoding to a number of bytes other than 32.
    public static func decodeSecretKey(_ text: some StringProtocol) throws(CryptoError) -> SecretKey {
        try decode(text) { SecretKey(copying: $0) }
    }

    /// Decodes a public key.
    ///
    /// - Throws: ``CryptoError/invalidKeyEncoding(_:)`` as ``decodeSecretKey(_:)`` does.
    public static func decodePublicKey(_ text: some StringProtocol) throws(CryptoError) -> Bytes32 {
        try decode(text) { Bytes32(copying: $0) }
    }

    private static func encode(bytes: UnsafeRawBufferPointer) -> String {
        // 44 characters and sodium_bin2base64's terminating NUL.
        var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
        defer { withUnsafeMutableBytes(of: &buffer) { secureZero($0) } }
        return withUnsafeMutableBytes(of: &buffer) { out in
            _ = sodium_bin2base64(
                out.baseAddress!.assumingMemoryBound(to: CChar.self), encodedCount + 1,
                bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count,
                sodium_base64_VARIANT_ORIGINAL)
            return String(decoding: UnsafeRawBufferPointer(rebasing: out[0..<encodedCount]), as: UTF8.self)
        }
    }

    /// Trims `text`, decodes it into scratch memory, checks for 32 bytes and hands them to `body`.
    private static func decode<R>(
        _ text: some StringProtocol, _ body: (UnsafeRawBufferPointer) -> R
    ) throws(CryptoError) -> R {
        // Copy the text into scratch memory that is zeroed afterwards, and decode into more of it.
        let utf8 = text.utf8
        let textCount = utf8.count
        let capacity = textCount / 4 * 3 + 3
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: textCount + capacity, alignment: 16)
        defer {
            secureZero(scratch)
            scratch.deallocate()
        }
        _ = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<textCount]).initializeMemory(as: UInt8.self, from: utf8)
        let binary = UnsafeMutableRawBufferPointer(rebasing: scratch[textCount...])

        var start = 0
        var end = textCount
        while start < end, isSpace(scratch[start]) { start += 1 }
        while end > start, isSpace(scratch[end - 1]) { end -= 1 }
        let characterCount = end - start
        guard characterCount > 0 else {
            throw .invalidKeyEncoding(
                "key is empty; expected \(encodedCount) characters of base64 as printed by "
                    + "`vpnd-keygen genkey` or `wg genkey`")
        }

        var decodedCount = 0
        let status = sodium_base642bin(
            binary.baseAddress!.assumingMemoryBound(to: UInt8.self), binary.count,
            (scratch.baseAddress! + start).assumingMemoryBound(to: CChar.self), characterCount,
            nil, &decodedCount, nil, sodium_base64_VARIANT_ORIGINAL)
        guard status == 0 else {
            throw .invalidKeyEncoding(
                "key is not valid base64 (\(characterCount) characters); a key is \(encodedCount) characters "
                    + "of standard base64 ending in '=', as printed by `vpnd-keygen genkey` or `wg genkey`")
        }
        guard decodedCount == SecretKey.byteCount else {
            throw .invalidKeyEncoding(
                "key decodes to \(decodedCount) bytes; a key is \(SecretKey.byteCount) bytes "
                    + "(\(encodedCount) characters of base64)")
        }
        return body(UnsafeRawBufferPointer(rebasing: binary[0..<SecretKey.byteCount]))
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }
}
