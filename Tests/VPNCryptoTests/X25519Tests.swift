// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@Suite("X25519")
struct X25519Tests {
    /// RFC 7748 section 5.2: scalar, u-coordinate, expected output.
    @Test(arguments: [
        ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
        ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    ])
    func rfc7748ScalarMultiplication(scalar: String, u: String, expected: String) throws {
        let out = try X25519.sharedSecret(privateKey: secretKey(scalar), publicKey: bytes32(u))
        #expect(out.exposedBytes() == hex(expected))
    }

    /// RFC 7748 section 5.2, the iterated vector after 1 and 1,000 rounds (1,000,000 is too slow for a unit test).
    @Test func rfc7748Iterated() throws {
        var k = hex("0900000000000000000000000000000000000000000000000000000000000000")
        var u = k
        for round in 1...1000 {
            let next = try X25519.sharedSecret(privateKey: SecretKey(k)!, publicKey: Bytes32(u)!).exposedBytes()
            u = k
            k = next
            if round == 1 { #expect(k == hex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")) }
        }
        #expect(k == hex("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"))
    }

    /// RFC 7748 section 6.1: Alice's and Bob's key pairs and their shared secret.
    @Test func rfc7748DiffieHellman() throws {
        let alicePrivate = secretKey("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        let bobPrivate = secretKey("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
        let alicePublic = X25519.publicKey(for: alicePrivate)
        let bobPublic = X25519.publicKey(for: bobPrivate)
        #expect(alicePublic == bytes32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(bobPublic == bytes32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        #expect(try X25519.sharedSecret(privateKey: alicePrivate, publicKey: bobPublic).exposedBytes() == shared)
        #expect(try X25519.sharedSecret(privateKey: bobPrivate, publicKey: alicePublic).exposedBytes() == shared)
    }

    /// Points of small order give the all-zero secret; the wrapper throws instead of returning it.
    @Test(arguments: [
        "0000000000000000000000000000000000000000000000000000000000000000",  // 0
        "0100000000000000000000000000000000000000000000000000000000000000",  // 1
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",  // order 8
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // p - 1
    ])
    func lowOrderPointThrows(point: String) {
        let privateKey = secretKey("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
        #expect(throws: CryptoError.lowOrderPoint) {
            try X25519.sharedSecret(privateKey: privateKey, publicKey: bytes32(point))
        }
    }

    @Test func generatedKeysAreClampedAndAgree() throws {
        var entropy = SeededEntropy(seed: 7)
        for _ in 0..<20 {
            let a = X25519.generatePrivateKey(using: &entropy)
            let b = X25519.generatePrivateKey(using: &entropy)
            let bytes = a.exposedBytes()
            #expect(bytes[0] & 7 == 0)
            #expect(bytes[31] & 0x80 == 0)
            #expect(bytes[31] & 0x40 == 0x40)
            let ab = try X25519.sharedSecret(privateKey: a, publicKey: X25519.publicKey(for: b))
            let ba = try X25519.sharedSecret(privateKey: b, publicKey: X25519.publicKey(for: a))
            #expect(ab.constantTimeEquals(ba))
        }
    }

    /// libsodium clamps internally, so an unclamped scalar has the public key of its clamped form (as in `wg pubkey`).
    @Test func publicKeyOfUnclampedScalarMatchesClamped() {
        var raw = [UInt8](repeating: 0xff, count: 32)
        let unclamped = SecretKey(raw)!
        raw.withUnsafeMutableBytes { X25519.clamp($0) }
        #expect(raw[0] == 0xf8 && raw[31] == 0x7f)
        #expect(X25519.publicKey(for: unclamped) == X25519.publicKey(for: SecretKey(raw)!))
    }
}
