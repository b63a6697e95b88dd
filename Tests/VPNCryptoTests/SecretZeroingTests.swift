// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCrypto

/// Secrets are wiped when their last reference goes: `SecretKey.deinit` zeroes the bytes before it
/// frees them. Observed through an internal probe that runs between the two, so no freed memory is
/// ever read.
@Suite("Secret zeroing")
struct SecretZeroingTests {
    /// What a probe saw: whether it ran and the bytes at that moment.
    final class Observation: @unchecked Sendable {
        var calls = 0
        var bytes: [UInt8] = []
    }

    static let secret = (0..<32).map { UInt8(0xA0 &+ $0) }

    static func makeKey(_ observation: Observation) -> SecretKey {
        SecretKey(copying: secret, zeroingProbe: { bytes in
            observation.calls += 1
            observation.bytes = Array(bytes)
        })
    }

    @Test func deinitZeroesTheBytesBeforeFreeingThem() {
        let observation = Observation()
        do {
            let key = Self.makeKey(observation)
            #expect(key.exposedBytes() == Self.secret, "the probe key holds the secret while alive")
            #expect(observation.calls == 0)
        }
        #expect(observation.calls == 1, "deinit ran once when the last reference went")
        #expect(observation.bytes.count == SecretKey.byteCount)
        #expect(observation.bytes.allSatisfy { $0 == 0 }, "the bytes were zeroed before being freed: \(observation.bytes)")
    }

    @Test func aKeyHeldByAnotherOwnerIsNotZeroedEarly() {
        let observation = Observation()
        var holder: [SecretKey] = []
        do {
            let key = Self.makeKey(observation)
            holder.append(key)
        }
        #expect(observation.calls == 0, "still referenced: not wiped")
        #expect(holder[0].exposedBytes() == Self.secret)
        holder.removeAll()
        #expect(observation.calls == 1)
        #expect(observation.bytes.allSatisfy { $0 == 0 })
    }

    @Test func derivedKeysAreSecretKeys() {
        // HKDF outputs (chaining keys, session keys) come out as SecretKey, so they inherit the wipe.
        let key = [UInt8](repeating: 7, count: 32)
        let output = key.withUnsafeBytes { k in BLAKE2s.hmac(key: k, k) }
        #expect(type(of: output) == SecretKey.self)
        #expect("\(output)" == "<redacted>")
    }
}
