// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto

@Suite("BLAKE2s, HMAC-BLAKE2s, HKDF")
struct BLAKE2sTests {
    /// RFC 7693 appendix B: BLAKE2s-256("abc").
    @Test func rfc7693AppendixB() {
        #expect(BLAKE2s.hash(Array("abc".utf8)).array
                == hex("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"))
    }

    /// Unkeyed reference vectors (BLAKE2 repository, testvectors/blake2-kat.json): input 00..len-1.
    @Test(arguments: [
        (0, "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9"),
        (1, "e34d74dbaf4ff4c6abd871cc220451d2ea2648846c7757fbaac82fe51ad64bea"),
        (64, "56f34e8b96557e90c1f24b52d0c89d51086acf1b00f634cf1dde9233b8eaaa3e"),
        (65, "1b53ee94aaf34e4b159d48de352c7f0661d0a40edff95a0b1639b4090e974472"),
    ])
    func referenceUnkeyed(length: Int, expected: String) {
        #expect(BLAKE2s.hash(sequence(length)).array == hex(expected))
    }

    /// Keyed reference vectors (blake2s-kat: key 00..1f, input 00..len-1, 32-byte output).
    @Test(arguments: [
        (0, "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49"),
        (1, "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1"),
        (63, "c65382513f07460da39833cb666c5ed82e61b9e998f4b0c4287cee56c3cc9bcd"),
        (64, "8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4"),
        (65, "21fe0ceb0052be7fb0f004187cacd7de67fa6eb0938d927677f2398c132317a8"),
        (255, "3fb735061abc519dfe979e54c1ee5bfad0a9d858b3315bad34bde999efd724dd"),
    ])
    func referenceKeyed(length: Int, expected: String) {
        let key = sequence(32)
        let input = sequence(length)
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in
            var hasher = BLAKE2s.Hasher(outputByteCount: 32, key: k)
            hasher.update(input)
            out.withUnsafeMutableBytes { hasher.finalize(into: $0) }
        }
        #expect(out == hex(expected))
    }

    /// Feeding the input in pieces gives the same digest as all at once, across block boundaries.
    @Test(arguments: [1, 7, 63, 64, 65])
    func incrementalMatchesOneShot(chunk: Int) {
        let input = sequence(255)
        var hasher = BLAKE2s.Hasher()
        var offset = 0
        while offset < input.count {
            let end = min(offset + chunk, input.count)
            hasher.update(Array(input[offset..<end]))
            offset = end
        }
        var out = Bytes32()
        out.withUnsafeMutableBytes { hasher.finalize(into: $0) }
        #expect(out == BLAKE2s.hash(input))
    }

    /// The variadic hash is the hash of the concatenation (Noise's MixHash).
    @Test func hashOfPartsIsHashOfConcatenation() {
        let a = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8)
        let b = Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8)
        let joined = a.withUnsafeBytes { x in b.withUnsafeBytes { y in BLAKE2s.hash(x, y) } }
        #expect(joined == BLAKE2s.hash(a + b))
    }

    /// WireGuard's initial chaining key and hash (whitepaper section 5.4.2), computed with
    /// Python's hashlib.blake2s (see the HMAC note below).
    @Test func wireGuardInitialChainingKeyAndHash() {
        let ck = BLAKE2s.hash(Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s".utf8))
        #expect(ck == bytes32("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"))
        let h = BLAKE2s.hash(ck.array + Array("WireGuard v1 zx2c4 Jason@zx2c4.com".utf8))
        #expect(h == bytes32("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"))
    }

    /// MAC (keyed BLAKE2s, 16 bytes) against the same construction through the Hasher.
    @Test func macIsKeyedBLAKE2s128() {
        let key = sequence(32)
        let message = sequence(116)  // the length mac1 covers in a handshake initiation
        var mac = [UInt8](repeating: 0, count: 16)
        key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in mac.withUnsafeMutableBytes { BLAKE2s.mac(key: k, m, into: $0) } }
        }
        // Python: hashlib.blake2s(bytes(range(116)), key=bytes(range(32)), digest_size=16).hexdigest()
        #expect(mac == hex("072e94ffbfc684bd8ab2a1b9dade2fd5"))
    }

    // HMAC-BLAKE2s and HKDF expected values were computed once with Python 3's standard library,
    // an implementation independent of libb2 and of this code:
    //     hmac.new(key, message, hashlib.blake2s).digest()
    //     HKDF(ck, input, n): t = HMAC(ck, input); T1 = HMAC(t, 0x01); Ti = HMAC(t, T(i-1) || i)
    // with ck = blake2s(b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s").

    /// HMAC-BLAKE2s with keys of 0, 16, 32 and 64 (the block size) bytes.
    @Test(arguments: [
        (32, "", "e2641d24dfa8dd89e8cb77f1cdc77d8c006e5bebdfc4d6a3a3a6f8d5b7586fb0"),
        (32, "616263", "82623be5bc0a391b24dce53e67d028eff92d586de0485ac37822e597d049c74f"),
        (64, "76706e6420686d61632d626c616b653273", "7d4730f1074d6b6c09fcc0196d4681d3fb5e1eaad602881f6325d212484bab60"),
        (0, "616263", "4a79a31b10a8c34b7c89735b8088e6b810b4bad4f36d671b65ca2ea0914952bf"),
    ])
    func hmacMatchesPython(keyLength: Int, messageHex: String, expected: String) {
        let key = sequence(keyLength)
        let message = hex(messageHex)
        let mac = key.withUnsafeBytes { k in message.withUnsafeBytes { BLAKE2s.hmac(key: k, $0) } }
        #expect(mac.exposedBytes() == hex(expected))
    }

    /// A 200-byte message split into parts, 16-byte key: parts are concatenated.
    @Test func hmacOfPartsMatchesPython() {
        let key = sequence(16)
        let message = (0..<200).map { UInt8($0 % 251) }
        let mac = key.withUnsafeBytes { k in
            message[0..<70].withUnsafeBytes { a in message[70...].withUnsafeBytes { b in BLAKE2s.hmac(key: k, a, b) } }
        }
        #expect(mac.exposedBytes() == hex("9e53bf2349844660771ee7d762d324ba010017c136388004e8d7728b5a19dbdb"))
    }

    static let t1 = "a1bb5656571db2bfe717e0e0148b7c3d3e5270adf9392b07cd20fe3d461094bd"
    static let t2 = "0349d890ad1d9ebbf0f4775178115686d2d91c13baf7941534c73d193ee4503d"
    static let t3 = "20524b5a0058dc9994bc93028b6b30007b1e270bffa55ac5dc9a890abef958e7"

    /// Noise HKDF with 1, 2 and 3 outputs; input 20..3f; each shorter output list is a prefix.
    @Test(arguments: [1, 2, 3])
    func hkdfMatchesPython(count: Int) {
        let ck = secretKey("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        let input = sequence(32, from: 0x20)
        let outputs = input.withUnsafeBytes { BLAKE2s.hkdf(chainingKey: ck, input: $0, count: count) }
        #expect(outputs.map { $0.exposedBytes() } == [Self.t1, Self.t2, Self.t3].prefix(count).map { hex($0) })
    }

    /// HKDF with an empty input (Noise's Split() at the end of the handshake).
    @Test func hkdfEmptyInputMatchesPython() {
        let ck = secretKey("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36")
        let outputs = BLAKE2s.hkdf(chainingKey: ck, input: UnsafeRawBufferPointer(start: nil, count: 0), count: 3)
        #expect(outputs.map { $0.exposedBytes() } == [
            hex("bd968725a9177942a8c2e4253d1dde31cf7b19ec001b4a3a3d141cd9d998d3ba"),
            hex("aab5462b323780fa615bf80ffe469510239ff361575a663968e686a7ae41d693"),
            hex("ae1e06e0931da10b9971bab8e282b42307522b38c0f4492cdd1bf44298126887"),
        ])
    }
}
