// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@Suite("ChaCha20-Poly1305")
struct ChaChaPolyTests {
    static let sunscreen = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
            .utf8)

    /// RFC 8439 section 2.8.2. Its nonce is 07 00 00 00 then 40..47, not WireGuard's zero-prefixed
    /// counter, so this goes through the full-nonce variant that the counter API delegates to.
    @Test func rfc8439Section2_8_2() {
        let key = secretKey("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        let nonce = hex("070000004041424344454647")
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let expectedCiphertext = hex("""
            d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
            3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
            92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
            3ff4def08e4b7a9de576d26586cec64b6116
            """)
        let expectedTag = hex("1ae10b594f09e26a7e902ecbd0600691")

        var text = Self.sunscreen
        var tag = [UInt8](repeating: 0, count: 16)
        text.withUnsafeMutableBytes { message in
            tag.withUnsafeMutableBytes { tagBytes in
                nonce.withUnsafeBytes { n in
                    aad.withUnsafeBytes { ad in
                        ChaChaPoly.seal(message, tag: tagBytes.baseAddress!, key: key, nonce: n, authenticating: ad)
                    }
                }
            }
        }
        #expect(text == expectedCiphertext)
        #expect(tag == expectedTag)

        let ok = text.withUnsafeMutableBytes { message in
            tag.withUnsafeBytes { tagBytes in
                nonce.withUnsafeBytes { n in
                    aad.withUnsafeBytes { ad in
                        ChaChaPoly.open(message, tag: tagBytes.baseAddress!, key: key, nonce: n, authenticating: ad)
                    }
                }
            }
        }
        #expect(ok)
        #expect(text == Self.sunscreen)
    }

    /// RFC 8439 appendix A.5. Its nonce 00000000 0102030405060708 is WireGuard's form, with
    /// counter 0x0807060504030201, so it also pins the counter's little-endian encoding.
    @Test func rfc8439AppendixA5ThroughCounter() {
        let key = secretKey("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0")
        let counter: UInt64 = 0x0807_0605_0403_0201
        let aad = hex("f33388860000000000004e91")
        let sealed = hex("""
            64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2
            4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf
            332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855
            9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4
            b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e
            af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a
            0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10
            49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29
            a6ad5cb4022b02709b
            eead9d67890cbb22392336fea1851f38
            """)
        let plaintext = Array(
            ("Internet-Drafts are draft documents valid for a maximum of six months and may be updated, replaced, "
                + "or obsoleted by other documents at any time. It is inappropriate to use Internet-Drafts as "
                + "reference material or to cite them other than as /\u{201C}work in progress./\u{201D}").utf8)
        #expect(plaintext.count == 265 && sealed.count == 265 + 16)

        var opened = [UInt8](repeating: 0, count: plaintext.count)
        let ok = sealed.withUnsafeBytes { c in
            opened.withUnsafeMutableBytes { out in
                aad.withUnsafeBytes { ChaChaPoly.open(c, into: out, key: key, counter: counter, authenticating: $0) }
            }
        }
        #expect(ok)
        #expect(opened == plaintext)

        // And sealing with the counter API reproduces the published ciphertext and tag.
        var resealed = [UInt8](repeating: 0, count: sealed.count)
        plaintext.withUnsafeBytes { p in
            resealed.withUnsafeMutableBytes { out in
                aad.withUnsafeBytes { ChaChaPoly.seal(p, into: out, key: key, counter: counter, authenticating: $0) }
            }
        }
        #expect(resealed == sealed)
    }

    /// Seal in place equals seal out of place; open in place restores the plaintext.
    @Test(arguments: [0, 1, 15, 16, 17, 64, 1420])
    func inPlaceMatchesOutOfPlace(length: Int) {
        var entropy = SeededEntropy(seed: UInt64(length) + 1)
        let key = SecretKey(random: &entropy)
        var plaintext = [UInt8](repeating: 0, count: length)
        plaintext.withUnsafeMutableBytes { entropy.fill($0) }
        let aad = hex("0400000001000000")
        let counter: UInt64 = 0x1_0000_0002

        var outOfPlace = [UInt8](repeating: 0, count: length + 16)
        plaintext.withUnsafeBytes { p in
            outOfPlace.withUnsafeMutableBytes { out in
                aad.withUnsafeBytes { ChaChaPoly.seal(p, into: out, key: key, counter: counter, authenticating: $0) }
            }
        }

        // One buffer with the tag in its tailroom, as the data path uses it.
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        buffer.withUnsafeMutableBytes { all in
            let body = UnsafeMutableRawBufferPointer(rebasing: all[0..<length])
            aad.withUnsafeBytes {
                ChaChaPoly.seal(body, tag: all.baseAddress! + length, key: key, counter: counter, authenticating: $0)
            }
        }
        #expect(buffer == outOfPlace)
        if length > 0 { #expect(Array(buffer[0..<length]) != plaintext) }

        let ok = buffer.withUnsafeMutableBytes { all in
            let body = UnsafeMutableRawBufferPointer(rebasing: all[0..<length])
            return aad.withUnsafeBytes {
                ChaChaPoly.open(body, tag: all.baseAddress! + length, key: key, counter: counter, authenticating: $0)
            }
        }
        #expect(ok)
        #expect(Array(buffer[0..<length]) == plaintext)
    }

    enum Tamper: CaseIterable, Sendable { case ciphertext, tag, associatedData, counter, key }

    /// Any flipped bit in ciphertext, tag or associated data, or a wrong counter or key, fails to open
    /// and leaves no plaintext behind.
    @Test(arguments: Tamper.allCases)
    func tamperedInPlaceOpenFails(tamper: Tamper) {
        var entropy = SeededEntropy(seed: 99)
        let key = SecretKey(random: &entropy)
        let plaintext = Array(0..<100).map { UInt8($0) }
        var aad = hex("01020304")
        var buffer = plaintext + [UInt8](repeating: 0, count: 16)
        buffer.withUnsafeMutableBytes { all in
            aad.withUnsafeBytes {
                ChaChaPoly.seal(UnsafeMutableRawBufferPointer(rebasing: all[0..<100]), tag: all.baseAddress! + 100,
                                key: key, counter: 5, authenticating: $0)
            }
        }
        var counter: UInt64 = 5
        var openKey = key
        switch tamper {
        case .ciphertext: buffer[37] ^= 0x10
        case .tag: buffer[100 + 15] ^= 0x01
        case .associatedData: aad[0] ^= 0x80
        case .counter: counter = 6
        case .key: openKey = SecretKey(random: &entropy)
        }
        let ok = buffer.withUnsafeMutableBytes { all in
            aad.withUnsafeBytes {
                ChaChaPoly.open(UnsafeMutableRawBufferPointer(rebasing: all[0..<100]), tag: all.baseAddress! + 100,
                                key: openKey, counter: counter, authenticating: $0)
            }
        }
        #expect(!ok)
        #expect(buffer[0..<100].allSatisfy { $0 == 0 }, "libsodium zeroes the message when the tag is wrong")
    }

    @Test func outOfPlaceOpenRejectsShortOrMismatchedInput() {
        let key = SecretKey.zero()
        var output = [UInt8](repeating: 0xaa, count: 4)
        let short = [UInt8](repeating: 0, count: 15)
        let ok = short.withUnsafeBytes { c in
            output.withUnsafeMutableBytes { out in
                ChaChaPoly.open(c, into: out, key: key, counter: 0, authenticating: UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        #expect(!ok)
        #expect(output == [0, 0, 0, 0])
    }

    /// A keepalive: an empty plaintext still gets a tag, and the tag alone opens.
    @Test func emptyMessage() {
        let key = secretKey("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
        var tag = [UInt8](repeating: 0, count: 16)
        let empty = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        tag.withUnsafeMutableBytes { ChaChaPoly.seal(empty, tag: $0.baseAddress!, key: key, counter: 0) }
        #expect(tag != [UInt8](repeating: 0, count: 16))
        #expect(tag.withUnsafeBytes { ChaChaPoly.open(empty, tag: $0.baseAddress!, key: key, counter: 0) })
        #expect(!tag.withUnsafeBytes { ChaChaPoly.open(empty, tag: $0.baseAddress!, key: key, counter: 1) })
    }
}
