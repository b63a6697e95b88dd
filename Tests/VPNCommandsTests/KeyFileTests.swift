// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNCommands
import VPNCrypto

/// ``KeyFile`` in process: the checks the daemon's config loader relies on.
@Suite("KeyFile")
struct KeyFileTests {
    static let alicePrivate = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
    static let alicePublic = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="

    func write(_ text: String, mode: Int, in dir: TemporaryDirectory, name: String = "k") -> String {
        let path = dir.path(name)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
        try? FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)  // umask-proof
        return path
    }

    /// The kind of ``KeyFileError`` that `body` throws; nil when it succeeds or throws something else.
    func kind(_ body: () throws -> Void) -> KeyFileError.Kind? {
        do {
            try body()
            return nil
        } catch let error as KeyFileError {
            return error.kind
        } catch {
            return nil
        }
    }

    @Test func readsPrivateKeyAndPresharedKey() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = write(Self.alicePrivate + "\n", mode: 0o600, in: dir)
        let key = try KeyFile.readPrivateKey(path: path)
        #expect(KeyEncoding.encode(X25519.publicKey(for: key)) == Self.alicePublic)
        #expect(try KeyFile.readPresharedKey(path: path).constantTimeEquals(key))
        let readOnly = write(Self.alicePrivate, mode: 0o400, in: dir, name: "ro")
        #expect(try KeyFile.readPrivateKey(path: readOnly).constantTimeEquals(key))
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o620, 0o602, 0o610])
    func refusesExposedSecretFiles(mode: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = write(Self.alicePrivate, mode: mode, in: dir)
        #expect(kind { _ = try KeyFile.readPrivateKey(path: path) } == .exposed(mode: UInt32(0o100000 | mode)))
        #expect(kind { _ = try KeyFile.readPresharedKey(path: path) } == .exposed(mode: UInt32(0o100000 | mode)))
        let message = KeyFileError(path: path, kind: .exposed(mode: UInt32(mode))).description
        #expect(message.hasSuffix("(mode 0\(String(mode, radix: 8))); run: chmod 600 \(path)"))
    }

    @Test func publicKeyFilesMayBeWorldReadable() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = write(Self.alicePublic + "\n", mode: 0o644, in: dir)
        #expect(KeyEncoding.encode(try KeyFile.readPublicKey(path: path)) == Self.alicePublic)
    }

    @Test func reportsMissingNonRegularTooLargeAndInvalid() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        #expect(kind { _ = try KeyFile.readPrivateKey(path: dir.path("nope")) } == .notFound)
        #expect(kind { _ = try KeyFile.readPrivateKey(path: dir.url.path) } == .notRegularFile)
        let big = write(String(repeating: "A", count: 2000), mode: 0o600, in: dir, name: "big")
        #expect(kind { _ = try KeyFile.readPrivateKey(path: big) } == .tooLarge(byteCount: 2000))
        let short = write("AAAAAAAAAAAAAAAAAAAAAA==", mode: 0o600, in: dir, name: "short")
        guard case .invalidKey(.invalidKeyEncoding(let why)) = kind({ _ = try KeyFile.readPrivateKey(path: short) }) else {
            Issue.record("expected invalidKey")
            return
        }
        #expect(why.contains("decodes to 16 bytes"))
    }

    @Test func writePrivateKeyIsExclusiveAnd0600() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let path = dir.path("w.key")
        let key = try KeyEncoding.decodeSecretKey(Self.alicePrivate)
        try KeyFile.writePrivateKey(key, path: path, replace: false)
        #expect(try permissions(path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == Self.alicePrivate + "\n")
        #expect(kind { try KeyFile.writePrivateKey(SecretKey.zero(), path: path, replace: false) } == .alreadyExists)
        #expect(try KeyFile.readPrivateKey(path: path).constantTimeEquals(key))
        try KeyFile.writePrivateKey(SecretKey.zero(), path: path, replace: true)
        #expect(try KeyFile.readPrivateKey(path: path).isZero)
        #expect(try permissions(path) == 0o600)
    }
}
