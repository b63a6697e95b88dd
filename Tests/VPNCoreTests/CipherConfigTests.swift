// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto

/// `Cipher` in [Interface]: chacha20poly1305 (the default, WireGuard's) or aes256gcm.
@Suite("Config: Cipher")
struct CipherConfigTests {
    static func parse(_ line: String, section: String = "") throws(ConfigError) -> Config {
        try Config.parse(
            """
            [Interface]
            PrivateKey = \(TestKeys.private1)
            \(line)
            [Peer]
            PublicKey = \(TestKeys.public2)
            \(section)
            """, fileName: "c.conf")
    }

    @Test("chacha20poly1305 by default; both names parse in any case, with or without dashes")
    func parses() throws {
        #expect(try Self.parse("").interface.cipher == .chaCha20Poly1305)
        #expect(try Self.parse("Cipher = aes256gcm").interface.cipher == .aes256GCM)
        #expect(try Self.parse("cipher = AES-256-GCM").interface.cipher == .aes256GCM)
        #expect(try Self.parse("Cipher = ChaCha20-Poly1305").interface.cipher == .chaCha20Poly1305)
        #expect(try Self.parse("Cipher = chacha20poly1305").interface.cipher == .chaCha20Poly1305)
    }

    @Test("another value is one line naming the key, the line and both choices", arguments: [
        "Cipher = aes128gcm", "Cipher = aes256", "Cipher = chacha20poly1305, aes256gcm",
    ])
    func refused(line: String) {
        #expect {
            _ = try Self.parse(line)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("c.conf:3: Cipher \"") && text.hasSuffix("\" is not chacha20poly1305 (the default, WireGuard's) or aes256gcm")
                && !text.contains("\n")
        }
    }

    @Test("it belongs in [Interface]")
    func notInPeer() {
        #expect {
            _ = try Self.parse("", section: "Cipher = aes256gcm")
        } throws: { error in "\(error)".hasPrefix("c.conf:6: ") && "\(error)".contains("Cipher") }
    }
}

/// `Threads` in [Interface] and `--threads`: auto (nil) or 1 to 64.
@Suite("Config: Threads")
struct ThreadsConfigTests {
    @Test("auto by default; auto and 1 to 64 parse; --threads overrides")
    func parses() throws {
        #expect(try CipherConfigTests.parse("").interface.threads == nil)
        #expect(try CipherConfigTests.parse("Threads = auto").interface.threads == nil)
        #expect(try CipherConfigTests.parse("Threads = 1").interface.threads == 1)
        #expect(try CipherConfigTests.parse("threads = 64").interface.threads == 64)
        let overridden = try CipherConfigTests.parse("Threads = 4").applying(ConfigOverrides(threads: "2"))
        #expect(overridden.interface.threads == 2)
        #expect(try CipherConfigTests.parse("Threads = 4").applying(ConfigOverrides(threads: "auto")).interface.threads == nil)
    }

    @Test("0, 65 and words are one line naming the key and the range", arguments: ["Threads = 0", "Threads = 65", "Threads = many"])
    func refused(line: String) {
        #expect {
            _ = try CipherConfigTests.parse(line)
        } throws: { error in
            "\(error)".hasPrefix("c.conf:3: Threads \"") && "\(error)".hasSuffix("\" is not auto or a number of threads between 1 and 64")
        }
        #expect {
            _ = try CipherConfigTests.parse("").applying(ConfigOverrides(threads: "0"))
        } throws: { error in "\(error)".contains("--threads: \"0\" is not auto or a number of threads between 1 and 64") }
    }
}
