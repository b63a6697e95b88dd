// SPDX-License-Identifier: MIT
import Testing
import VPNCrypto

@Suite("XChaCha20-Poly1305")
struct XChaChaPolyTests {
    static let key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
    static let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
    static let aad = hex("50515253c0c1c2c3c4c5c6c7")

    /// draft-irtf-cfrg-xchacha-03 appendix A.3.1.
    @Test func draftAppendixA3_1() {
        let plaintext = ChaChaPolyTests.sunscreen
        let expected = hex("""
            bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
            731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
            2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
            21f9664c97637da9768812f615c68b13b52e
            c0875924c1c7987947deafd8780acf49
            """)
        var sealed = [UInt8](repeating: 0, count: plaintext.count + 16)
        Self.run { key, nonce, aad in
            plaintext.withUnsafeBytes { p in
                sealed.withUnsafeMutableBytes { XChaChaPoly.seal(p, into: $0, key: key, nonce: nonce, authenticating: aad) }
            }
        }
        #expect(sealed == expected)

        var opened = [UInt8](repeating: 0, count: plaintext.count)
        let ok = Self.run { key, nonce, aad in
            expected.withUnsafeBytes { c in
                opened.withUnsafeMutableBytes { XChaChaPoly.open(c, into: $0, key: key, nonce: nonce, authenticating: aad) }
            }
        }
        #expect(ok)
        #expect(opened == plaintext)
    }

    /// WireGuard's cookie is 16 bytes sealed into 32; a flipped bit anywhere or a short input fails.
    @Test(arguments: [0, 5, 16, 31])
    func cookieTamperFails(flippedByte: Int) {
        let cookie = Array(UInt8(1)...UInt8(16))
        var sealed = [UInt8](repeating: 0, count: 32)
        Self.run { key, nonce, aad in
            cookie.withUnsafeBytes { p in
                sealed.withUnsafeMutableBytes { XChaChaPoly.seal(p, into: $0, key: key, nonce: nonce, authenticating: aad) }
            }
        }
        sealed[flippedByte] ^= 0x04
        var opened = [UInt8](repeating: 0, count: 16)
        let ok = Self.run { key, nonce, aad in
            sealed.withUnsafeBytes { c in
                opened.withUnsafeMutableBytes { XChaChaPoly.open(c, into: $0, key: key, nonce: nonce, authenticating: aad) }
            }
        }
        #expect(!ok)
        #expect(opened == [UInt8](repeating: 0, count: 16))
    }

    @Test func shortCiphertextFails() {
        let short = [UInt8](repeating: 0, count: 15)
        let ok = Self.run { key, nonce, aad in
            short.withUnsafeBytes { c in
                XChaChaPoly.open(c, into: UnsafeMutableRawBufferPointer(start: nil, count: 0), key: key, nonce: nonce,
                                 authenticating: aad)
            }
        }
        #expect(!ok)
    }

    private static func run<R>(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> R) -> R {
        key.withUnsafeBytes { k in nonce.withUnsafeBytes { n in aad.withUnsafeBytes { a in body(k, n, a) } } }
    }
}
