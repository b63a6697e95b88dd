// SPDX-License-Identifier: MIT
import Testing
import VPNCore

/// Found by the config fuzz target (Fuzz/FuzzConfig): an error echoing a flag or a file value
/// printed control characters verbatim, so `--listen-port $'1\n2'` gave a two-line message and
/// a lone CR or an escape sequence in the file could rewrite the terminal line showing it.
@Suite struct ConfigErrorEscapingTests {
    static func file(_ extra: String = "") -> String {
        """
        [Interface]
        PrivateKeyFile = keys/server.key
        ListenPort = 51820
        \(extra)
        [Peer]
        PublicKey = \(TestKeys.public2)
        """
    }

    @Test func flagWithNewlineGivesOneLine() throws {
        let config = try Config.parse(Self.file(), fileName: "s.conf")
        let error = #expect(throws: ConfigError.self) { try config.applying(ConfigOverrides(listenPort: "1\n2")) }
        #expect(error?.message == "--listen-port: \"1\n2\" is not a port number (1-65535)")
        #expect(error?.description == #"--listen-port: "1\u{A}2" is not a port number (1-65535)"#)
    }

    @Test func loneCarriageReturnAndEscapeInFileAreEscaped() {
        let error = #expect(throws: ConfigError.self) {
            try Config.parse(Self.file("Name = a\rb\u{1B}[2K"), fileName: "s.conf")
        }
        #expect(error?.line == 4)
        #expect(error?.description
            == #"s.conf:4: Name "a\u{D}b\u{1B}[2K" is not an interface name (letters, digits, "_", "." and "-")"#)
    }

    @Test func plainMessagesAreUnchanged() {
        let error = ConfigError(fileName: "a.conf", line: 2, message: "MTU \"x\ty\" is not a number")
        #expect(error.description == "a.conf:2: MTU \"x\ty\" is not a number")
    }
}
