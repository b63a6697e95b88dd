// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto

@Suite("AES-256-GCM")
struct AES256GCMTests {
    /// Seals `plaintext` in place under `key` and `counter`; returns ciphertext ‖ tag.
    func seal(_ plaintext: [UInt8], key: SecretKey, counter: UInt64, ad: [UInt8] = []) -> [UInt8] {
        let prepared = AES256GCM.PreparedKey(key)
        var text = plaintext
        var tag = [UInt8](repeating: 0, count: 16)
        text.withUnsafeMutableBytes { message in
            tag.withUnsafeMutableBytes { tagBytes in
                ad.withUnsafeBytes { AES256GCM.seal(message, tag: tagBytes.baseAddress!, key: prepared, counter: counter, authenticating: $0) }
            }
        }
        return text + tag
    }

    /// Opens ciphertext ‖ tag in place; nil when the tag does not verify.
    func open(_ sealed: [UInt8], key: SecretKey, counter: UInt64, ad: [UInt8] = []) -> [UInt8]? {
        let prepared = AES256GCM.PreparedKey(key)
        var text = Array(sealed.dropLast(16))
        let tag = Array(sealed.suffix(16))
        let ok = text.withUnsafeMutableBytes { message in
            tag.withUnsafeBytes { tagBytes in
                ad.withUnsafeBytes { AES256GCM.open(message, tag: tagBytes.baseAddress!, key: prepared, counter: counter, authenticating: $0) }
            }
        }
        return ok ? text : nil
    }

    @Test("this CPU runs AES-256-GCM (CI machines have AES-NI; the tests below need it)")
    func available() {
        #expect(AES256GCM.isAvailable)
        #expect(TransportCipher.aes256GCM.isAvailable && TransportCipher.chaCha20Poly1305.isAvailable)
    }

    /// McGrew and Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14: the
    /// all-zero key and IV (WireGuard's nonce for counter 0 is twelve zero bytes).
    @Test func gcmSpecTestCases13And14() throws {
        try #require(AES256GCM.isAvailable)
        let zero = SecretKey.zero()
        #expect(seal([], key: zero, counter: 0) == hex("530f8afbc74536b9a963b4f1c4cb738b"))
        #expect(seal([UInt8](repeating: 0, count: 16), key: zero, counter: 0)
            == hex("cea7403d4d606b6e074ec5d3baf39d18 d0d1c8a799996bf0265b98b5d48ab919"))
    }

    /// A vector made with Python's `cryptography` (OpenSSL's AES-GCM), an independent
    /// implementation: key 00..1f, nonce 00000000 ‖ LE64(5), 100 bytes 00..63, AD "header16bytes...".
    @Test func wireGuardNonceAndAssociatedData() throws {
        try #require(AES256GCM.isAvailable)
        let key = SecretKey(sequence(32))!
        let ad = Array("header16bytes...".utf8)
        let expected = hex("""
            7e0c1a9efc9b0c44d22d4748b4f79227ae55f8652d495259c1056f6fdc0f39e47da1bbb95de8f0e0553639d13291d2f7
            f5e286c3735f149db27214ffad666458871f2fb931e51513e86c3d85d56de3ad9b36e377327e4c966815c7e03be238fa
            daf996fdb6f82cea8bf577180f46c30ab84eb181
            """)
        #expect(seal(sequence(100), key: key, counter: 5, ad: ad) == expected)
        #expect(open(expected, key: key, counter: 5, ad: ad) == sequence(100))
    }

    @Test("a changed byte, counter, key or associated data fails to open")
    func tamper() throws {
        try #require(AES256GCM.isAvailable)
        let key = SecretKey(sequence(32))!
        let sealed = seal(sequence(1420), key: key, counter: 77, ad: [1, 2, 3])
        #expect(open(sealed, key: key, counter: 77, ad: [1, 2, 3]) == sequence(1420))
        for index in [0, 700, 1419, 1420, 1435] {
            var bad = sealed
            bad[index] ^= 0x01
            #expect(open(bad, key: key, counter: 77, ad: [1, 2, 3]) == nil)
        }
        #expect(open(sealed, key: key, counter: 78, ad: [1, 2, 3]) == nil)
        #expect(open(sealed, key: SecretKey(sequence(32, from: 1))!, counter: 77, ad: [1, 2, 3]) == nil)
        #expect(open(sealed, key: key, counter: 77, ad: [1, 2, 4]) == nil)
    }

    @Test("a TransportKey seals with its cipher: ChaCha20-Poly1305 as ChaChaPoly does, AES-256-GCM as AES256GCM does")
    func transportKeyDispatch() throws {
        try #require(AES256GCM.isAvailable)
        let secret = SecretKey(sequence(32))!
        func sealed(with key: TransportKey) -> [UInt8] {
            var text = sequence(64)
            var tag = [UInt8](repeating: 0, count: 16)
            text.withUnsafeMutableBytes { m in tag.withUnsafeMutableBytes { key.seal(m, tag: $0.baseAddress!, counter: 9) } }
            return text + tag
        }
        var chacha = sequence(64)
        var chachaTag = [UInt8](repeating: 0, count: 16)
        chacha.withUnsafeMutableBytes { m in
            chachaTag.withUnsafeMutableBytes { ChaChaPoly.seal(m, tag: $0.baseAddress!, key: secret, counter: 9) }
        }
        #expect(TransportKey(secret).cipher == .chaCha20Poly1305)
        #expect(TransportKey(secret, cipher: .aes256GCM).cipher == .aes256GCM)
        #expect(sealed(with: TransportKey(secret)) == chacha + chachaTag)
        let aes = sealed(with: TransportKey(secret, cipher: .aes256GCM))
        #expect(aes == seal(sequence(64), key: secret, counter: 9))
        #expect(aes != chacha + chachaTag)
    }
}
