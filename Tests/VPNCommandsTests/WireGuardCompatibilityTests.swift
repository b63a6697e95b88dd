// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNCrypto

/// `vpnd-keygen` and WireGuard's `wg` produce and accept the same keys.
///
/// Needs wireguard-tools; without `wg` the suite is skipped, except under `CI=true`, where it fails.
@Suite("WireGuard key compatibility", .enabled(if: (Programs.wg != nil && Programs.keygen != nil) || Programs.isCI,
                                               "wg (wireguard-tools) or the vpnd-keygen binary not found"))
struct WireGuardCompatibilityTests {
    static let count = 100

    func tools() throws -> (wg: String, keygen: String) {
        let wg = try #require(Programs.wg, "wg is required under CI=true; install wireguard-tools")
        let keygen = try #require(Programs.keygen, "the vpnd-keygen binary was not found next to the tests")
        return (wg, keygen)
    }

    /// 100 random 32-byte strings (not clamped, so clamping must agree too), plus edge cases:
    /// `wg pubkey` and `vpnd-keygen pubkey` print identical public keys.
    @Test func pubkeyMatchesWG() throws {
        let (wg, keygen) = try tools()
        var random = SplitMix64(state: 0x5650_4e44)
        var keys = (0..<Self.count).map { _ in Data(random.bytes(32)).base64EncodedString() }
        keys += [Data(count: 32).base64EncodedString(), Data(repeating: 0xff, count: 32).base64EncodedString()]
        for key in keys {
            let theirs = try Programs.run(wg, ["pubkey"], input: key + "\n")
            let ours = try Programs.run(keygen, ["pubkey"], input: key + "\n")
            #expect(theirs.status == 0 && ours.status == 0)
            #expect(ours.standardOutput == theirs.standardOutput, "private key \(key)")
            #expect(ours.standardOutput.utf8.count == 45)
        }
    }

    /// 100 `vpnd-keygen genkey` outputs are accepted by `wg pubkey` and give our public key.
    @Test func wgAcceptsOurPrivateKeys() throws {
        let (wg, keygen) = try tools()
        for _ in 0..<Self.count {
            let key = try Programs.run(keygen, ["genkey"])
            #expect(key.status == 0)
            let theirs = try Programs.run(wg, ["pubkey"], input: key.standardOutput)
            #expect(theirs.status == 0, "wg rejected \(key.standardOutput): \(theirs.standardError)")
            let ours = try KeyEncoding.encode(X25519.publicKey(for: KeyEncoding.decodeSecretKey(key.standardOutput)))
            #expect(theirs.standardOutput == ours + "\n")
        }
    }

    /// 100 `wg genkey` outputs are accepted by `vpnd-keygen pubkey` with wg's public key; `wg genpsk`
    /// output decodes as a pre-shared key.
    @Test func weAcceptWGPrivateKeys() throws {
        let (wg, keygen) = try tools()
        for _ in 0..<Self.count {
            let key = try Programs.run(wg, ["genkey"])
            #expect(key.status == 0)
            let ours = try Programs.run(keygen, ["pubkey"], input: key.standardOutput)
            #expect(ours.status == 0, "vpnd-keygen rejected \(key.standardOutput): \(ours.standardError)")
            let theirs = try Programs.run(wg, ["pubkey"], input: key.standardOutput)
            #expect(ours.standardOutput == theirs.standardOutput)
        }
        let psk = try Programs.run(wg, ["genpsk"])
        #expect(try KeyEncoding.decodeSecretKey(psk.standardOutput).exposedBytes().count == 32)
    }
}
