// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@Suite("KeyEncoding")
struct KeyEncodingTests {
    // RFC 7748 section 6.1's Alice; base64 by Python's base64.b64encode, and `wg pubkey` maps the
    // first to the second.
    static let alicePrivateHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
    static let alicePrivateText = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
    static let alicePublicText = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

    @Test func encodesKnownKeys() {
        #expect(KeyEncoding.encode(secretKey(Self.alicePrivateHex)) == Self.alicePrivateText)
        let alicePublic = X25519.publicKey(for: secretKey(Self.alicePrivateHex))
        #expect(KeyEncoding.encode(alicePublic) == Self.alicePublicText)
        #expect(KeyEncoding.encode(Bytes32()) == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        #expect(KeyEncoding.encode(SecretKey([UInt8](repeating: 0xff, count: 32))!)
                == "//////////////////////////////////////////8=")
    }

    @Test func decodesKnownKeys() throws {
        #expect(try KeyEncoding.decodeSecretKey(Self.alicePrivateText).exposedBytes() == hex(Self.alicePrivateHex))
        #expect(try KeyEncoding.decodePublicKey(Self.alicePublicText)
                == bytes32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
    }

    @Test func roundTripsRandomKeys() throws {
        var entropy = SeededEntropy(seed: 2024)
        for _ in 0..<200 {
            let key = SecretKey(random: &entropy)
            let text = KeyEncoding.encode(key)
            #expect(text.utf8.count == KeyEncoding.encodedCount)
            #expect(text.hasSuffix("="))
            #expect(try KeyEncoding.decodeSecretKey(text).constantTimeEquals(key))
            let pub = X25519.publicKey(for: key)
            #expect(try KeyEncoding.decodePublicKey(KeyEncoding.encode(pub)) == pub)
        }
    }

    /// Surrounding whitespace (a key file's newline, a pasted space) is ignored.
    @Test(arguments: [
        "\(alicePrivateText)\n", "  \(alicePrivateText)", "\t\(alicePrivateText) \r\n", "\n\n\(alicePrivateText)\n\n",
    ])
    func trimsSurroundingWhitespace(text: String) throws {
        #expect(try KeyEncoding.decodeSecretKey(text).exposedBytes() == hex(Self.alicePrivateHex))
    }

    /// Each bad input is rejected with a message naming the problem.
    @Test(arguments: [
        ("", "key is empty"),
        (" \n\t", "key is empty"),
        ("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo", "not valid base64 (43 characters)"),  // padding missing
        ("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=", "not valid base64"),  // non-zero trailing bits
        ("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC!=", "not valid base64"),
        ("dwdtCnMYpX08FsFyUbJm Rd9ML4frwJkqsXf7pR25LCo=", "not valid base64"),  // inner space
        ("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo_", "not valid base64"),  // URL-safe alphabet
        ("AAAAAAAAAAAAAAAAAAAAAA==", "key decodes to 16 bytes; a key is 32 bytes"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key decodes to 33 bytes; a key is 32 bytes"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key decodes to 36 bytes"),
        ("\(alicePrivateText)\(alicePrivateText)", "not valid base64"),
    ])
    func rejectsBadInput(text: String, message: String) {
        check(text, message) { (text) throws(CryptoError) in _ = try KeyEncoding.decodeSecretKey(text) }
        check(text, message) { (text) throws(CryptoError) in _ = try KeyEncoding.decodePublicKey(text) }
    }

    private func check(_ text: String, _ message: String, _ decode: (String) throws(CryptoError) -> Void) {
        do {
            try decode(text)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            guard case .invalidKeyEncoding(let why) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(why.contains(message), "\(why)")
            #expect(!why.contains("\n"))
            #expect(error.description == why)
        }
    }

    /// Decoding works from a Substring (a line of a config file) as from a String.
    @Test func decodesSubstring() throws {
        let line = "PrivateKey = \(Self.alicePrivateText)"
        let value = line[line.index(line.startIndex, offsetBy: 13)...]
        #expect(try KeyEncoding.decodeSecretKey(value).exposedBytes() == hex(Self.alicePrivateHex))
    }
}
