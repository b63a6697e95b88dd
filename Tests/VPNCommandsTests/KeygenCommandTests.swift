// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNCrypto

/// Runs the built `vpnd-keygen` binary.
@Suite("vpnd-keygen", .enabled(if: Programs.keygen != nil || Programs.isCI, "vpnd-keygen binary not found"))
struct KeygenCommandTests {
    /// A base64 key as printed: 44 characters and a newline.
    static func isKeyLine(_ text: String) -> Bool {
        text.utf8.count == 45 && text.hasSuffix("=\n") && (try? KeyEncoding.decodePublicKey(text)) != nil
    }

    /// A failure prints exactly one line, `vpnd-keygen: ...`, with no Swift type names or traces.
    static func expectOneLineFailure(_ result: ProcessResult, containing text: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 1, sourceLocation: sourceLocation)
        #expect(result.standardOutput.isEmpty, sourceLocation: sourceLocation)
        #expect(result.errorLines.count == 1, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.hasPrefix("vpnd-keygen: "), sourceLocation: sourceLocation)
        #expect(result.standardError.contains(text), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        for leak in ["Error(", "KeyFileError", "CryptoError", "KeygenFailure", "Fatal error", ".swift", "invalidKey"] {
            #expect(!result.standardError.contains(leak), "stderr: \(result.standardError)", sourceLocation: sourceLocation)
        }
    }

    @Test func genkeyPubkeyRoundTrip() throws {
        let generated = try Programs.keygen(["genkey"])
        #expect(generated.status == 0)
        #expect(Self.isKeyLine(generated.standardOutput))
        let privateKey = try KeyEncoding.decodeSecretKey(generated.standardOutput)
        let bytes = privateKey.exposedBytes()
        #expect(bytes[0] & 7 == 0 && bytes[31] & 0xc0 == 0x40, "genkey clamps like wg genkey")

        let derived = try Programs.keygen(["pubkey"], input: generated.standardOutput)
        #expect(derived.status == 0)
        #expect(derived.standardError.isEmpty)
        #expect(derived.standardOutput == KeyEncoding.encode(X25519.publicKey(for: privateKey)) + "\n")

        // Two runs give two different keys.
        #expect(try Programs.keygen(["genkey"]).standardOutput != generated.standardOutput)
    }

    @Test func pubkeyMatchesRFC7748Alice() throws {
        // RFC 7748 section 6.1 Alice, base64.
        let result = try Programs.keygen(["pubkey"], input: "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n")
        #expect(result.standardOutput == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n")
    }

    @Test func genpskPrintsRandomKeys() throws {
        let a = try Programs.keygen(["genpsk"])
        let b = try Programs.keygen(["genpsk"])
        #expect(a.status == 0 && b.status == 0)
        #expect(Self.isKeyLine(a.standardOutput) && Self.isKeyLine(b.standardOutput))
        #expect(a.standardOutput != b.standardOutput)
    }

    @Test(arguments: [
        ("not a key\n", "standard input: key is not valid base64"),
        ("AAAAAAAAAAAAAAAAAAAAAA==\n", "key decodes to 16 bytes; a key is 32 bytes"),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "key decodes to 36 bytes"),
        ("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo", "not valid base64 (43 characters)"),
        ("", "no private key on standard input"),
        ("\n\n", "no private key on standard input"),
        (String(repeating: "A", count: 5000), "too long"),
    ])
    func pubkeyRejectsBadInput(input: String, message: String) throws {
        Self.expectOneLineFailure(try Programs.keygen(["pubkey"], input: input), containing: message)
    }

    @Test func generateWritesPrivateKey0600AndRefusesExisting() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let first = try Programs.keygen(["generate", "alpha"], in: dir.url)
        #expect(first.status == 0)
        #expect(first.standardError.isEmpty)
        #expect(Self.isKeyLine(first.standardOutput))
        let keyPath = dir.path("keys/alpha.key")
        #expect(try permissions(keyPath) == 0o600)
        #expect(try permissions(dir.path("keys")) == 0o700)
        #expect(try String(contentsOfFile: dir.path("keys/alpha.pub"), encoding: .utf8) == first.standardOutput)
        let privateText = try String(contentsOfFile: keyPath, encoding: .utf8)
        #expect(try Programs.keygen(["pubkey"], input: privateText).standardOutput == first.standardOutput)

        // A second run must not touch the existing key.
        let second = try Programs.keygen(["generate", "alpha"], in: dir.url)
        Self.expectOneLineFailure(second, containing: "keys/alpha.key already exists; pass --force")
        #expect(try String(contentsOfFile: keyPath, encoding: .utf8) == privateText)

        // --force replaces it, and the replacement is 0600 even if the old file was not.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyPath)
        let forced = try Programs.keygen(["generate", "alpha", "--force"], in: dir.url)
        #expect(forced.status == 0)
        #expect(forced.standardOutput != first.standardOutput)
        #expect(try permissions(keyPath) == 0o600)
        #expect(try String(contentsOfFile: keyPath, encoding: .utf8) != privateText)
    }

    @Test func generateHonoursDirAndRefusesSlash() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try Programs.keygen(["generate", "beta", "--dir", dir.path("nested/keys")])
        #expect(result.status == 0)
        #expect(try permissions(dir.path("nested/keys/beta.key")) == 0o600)

        let slash = try Programs.keygen(["generate", "../beta", "--dir", dir.path("keys")])
        #expect(slash.status != 0)
        #expect(slash.standardError.contains("must not contain '/'"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("beta.key")))
    }

    @Test func showPrintsPublicKey() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let generated = try Programs.keygen(["generate", "gamma", "--dir", dir.path("k")])
        let shown = try Programs.keygen(["show", dir.path("k/gamma.key")])
        #expect(shown.status == 0)
        #expect(shown.standardOutput == generated.standardOutput)
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660, 0o620])
    func showRefusesExposedKeyFile(mode: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        _ = try Programs.keygen(["generate", "a"], in: dir.url)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: dir.path("keys/a.key"))
        let result = try Programs.keygen(["show", "keys/a.key"], in: dir.url)
        let octal = String(format: "%04o", mode)
        let what = mode & 0o044 != 0 ? "readable" : "writable"
        Self.expectOneLineFailure(
            result, containing: "keys/a.key is \(what) by group or others (mode \(octal)); run: chmod 600 keys/a.key")
        if mode == 0o644 {
            #expect(result.standardError
                    == "vpnd-keygen: keys/a.key is readable by group or others (mode 0644); run: chmod 600 keys/a.key\n")
        }
    }

    @Test func showReportsMissingDirectoryAndBadFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        Self.expectOneLineFailure(try Programs.keygen(["show", dir.path("missing.key")]), containing: "does not exist")
        Self.expectOneLineFailure(try Programs.keygen(["show", dir.url.path]), containing: "is not a regular file")

        let bad = dir.path("bad.key")
        _ = FileManager.default.createFile(atPath: bad, contents: Data("hello\n".utf8), attributes: [.posixPermissions: 0o600])
        Self.expectOneLineFailure(try Programs.keygen(["show", bad]), containing: "bad.key: key is not valid base64")

        let short = dir.path("short.key")
        _ = FileManager.default.createFile(
            atPath: short, contents: Data("AAAAAAAAAAAAAAAAAAAAAA==\n".utf8), attributes: [.posixPermissions: 0o600])
        Self.expectOneLineFailure(try Programs.keygen(["show", short]), containing: "key decodes to 16 bytes")
    }

    @Test(arguments: [[], ["genkey"], ["pubkey"], ["genpsk"], ["generate"], ["show"]])
    func helpIsAvailable(subcommand: [String]) throws {
        let result = try Programs.keygen(subcommand + ["--help"])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("OVERVIEW:"))
        #expect(result.standardOutput.contains("USAGE: vpnd-keygen"))
        #expect(result.standardOutput.split(separator: "\n").count >= 6, "help has an abstract and a discussion")
    }
}
