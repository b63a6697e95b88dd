// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@Suite("SecretKey")
struct SecretKeyTests {
    static let bytes = (0..<32).map { UInt8($0 * 7 + 3) }

    @Test func neverPrintsItsBytes() {
        let key = SecretKey(Self.bytes)!
        #expect(key.description == "<redacted>")
        #expect(key.debugDescription == "<redacted>")
        #expect("\(key)" == "<redacted>")
        #expect(String(describing: key) == "<redacted>")
        #expect(String(reflecting: key) == "<redacted>")
        #expect("\([key])" == "[<redacted>]")
        var dumped = ""
        dump(key, to: &dumped)
        #expect(!dumped.contains("storage"))
        #expect(dumped.contains("<redacted>"))
        // No hex of the bytes anywhere.
        let hexText = Hex.encode(Self.bytes)
        #expect(![key.description, key.debugDescription, dumped].contains { $0.contains(hexText.prefix(8)) })
    }

    @Test func constantTimeEquals() {
        let a = SecretKey(Self.bytes)!
        let b = SecretKey(Self.bytes)!
        #expect(a.constantTimeEquals(b))
        #expect(a.constantTimeEquals(a))
        for index in [0, 15, 31] {
            var other = Self.bytes
            other[index] ^= 1
            #expect(!a.constantTimeEquals(SecretKey(other)!))
        }
    }

    @Test func freeConstantTimeEquals() {
        let a: [UInt8] = [1, 2, 3]
        let same: [UInt8] = [1, 2, 3]
        let different: [UInt8] = [1, 2, 4]
        let shorter: [UInt8] = [1, 2]
        a.withUnsafeBytes { x in
            #expect(same.withUnsafeBytes { VPNCrypto.constantTimeEquals(x, $0) })
            #expect(!different.withUnsafeBytes { VPNCrypto.constantTimeEquals(x, $0) })
            #expect(!shorter.withUnsafeBytes { VPNCrypto.constantTimeEquals(x, $0) })
        }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        let emptyEqual = VPNCrypto.constantTimeEquals(empty, empty)
        #expect(emptyEqual)
    }

    @Test func zeroKey() {
        let zero = SecretKey.zero()
        #expect(zero.isZero)
        #expect(zero.exposedBytes() == [UInt8](repeating: 0, count: 32))
        #expect(!SecretKey(Self.bytes)!.isZero)
        #expect(zero.constantTimeEquals(SecretKey([UInt8](repeating: 0, count: 32))!))
    }

    @Test func initialisers() {
        #expect(SecretKey([UInt8](repeating: 1, count: 31)) == nil)
        #expect(SecretKey([UInt8](repeating: 1, count: 33)) == nil)
        let copied = Self.bytes.withUnsafeBytes { SecretKey(copying: $0) }
        #expect(copied.exposedBytes() == Self.bytes)
        let filled = SecretKey(filling: { $0.copyBytes(from: Self.bytes) })
        #expect(filled.constantTimeEquals(copied))
        var e1 = SeededEntropy(seed: 1)
        var e2 = SeededEntropy(seed: 1)
        #expect(SecretKey(random: &e1).constantTimeEquals(SecretKey(random: &e2)))
    }

    @Test func secureZeroClears() {
        var buffer = [UInt8](repeating: 0xaa, count: 40)
        buffer.withUnsafeMutableBytes { secureZero($0) }
        #expect(buffer.allSatisfy { $0 == 0 })
    }

    @Test func systemEntropyFills() {
        var entropy = SystemEntropy()
        var a = [UInt8](repeating: 0, count: 32)
        var b = [UInt8](repeating: 0, count: 32)
        a.withUnsafeMutableBytes { entropy.fill($0) }
        b.withUnsafeMutableBytes { entropy.fill($0) }
        #expect(a != b)
        #expect(Sodium.initialise())
    }
}
