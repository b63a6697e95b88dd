// SPDX-License-Identifier: MIT
import CBlake2
import VPNBasics

/// BLAKE2s (RFC 7693) from libb2, and the constructions WireGuard builds on it:
/// keyed MAC, HMAC-BLAKE2s and the Noise HKDF.
public enum BLAKE2s {
    /// Size of a full hash in bytes.
    public static let hashByteCount = 32
    /// BLAKE2s block size, the HMAC block size.
    public static let blockByteCount = 64

    /// An incremental BLAKE2s computation.
    public struct Hasher {
        @usableFromInline var state = blake2s_state()
        @usableFromInline let outputByteCount: Int

        /// Unkeyed BLAKE2s with `outputByteCount` (1...32) bytes of output.
        public init(outputByteCount: Int = 32) {
            precondition((1...32).contains(outputByteCount), "BLAKE2s output is 1 to 32 bytes")
            self.outputByteCount = outputByteCount
            _ = blake2s_init(&state, outputByteCount)
        }

        /// Keyed BLAKE2s (a MAC) with a key of 1...32 bytes.
        public init(outputByteCount: Int, key: UnsafeRawBufferPointer) {
            precondition((1...32).contains(outputByteCount), "BLAKE2s output is 1 to 32 bytes")
            precondition((1...32).contains(key.count), "BLAKE2s key is 1 to 32 bytes")
            self.outputByteCount = outputByteCount
            _ = blake2s_init_key(&state, outputByteCount, key.baseAddress, key.count)
        }

        /// Absorbs `bytes`.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0 else { return }
            _ = blake2s_update(&state, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count)
        }

        /// Absorbs `bytes`.
        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

        /// Writes the digest (`outputByteCount` bytes) to `output` and wipes the state.
        public mutating func finalize(into output: UnsafeMutableRawBufferPointer) {
            precondition(output.count == outputByteCount, "BLAKE2s output buffer has the wrong size")
            _ = blake2s_final(&state, output.baseAddress!.assumingMemoryBound(to: UInt8.self), outputByteCount)
            withUnsafeMutableBytes(of: &state) { secureZero($0) }
        }
    }

    /// BLAKE2s-256 of the concatenation of `parts`.
    public static func hash(_ parts: UnsafeRawBufferPointer...) -> Bytes32 {
        var hasher = Hasher()
        for part in parts { hasher.update(part) }
        var out = Bytes32()
        out.withUnsafeMutableBytes { hasher.finalize(into: $0) }
        return out
    }

    /// BLAKE2s-256 of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> Bytes32 { bytes.withUnsafeBytes { hash($0) } }

    /// Keyed BLAKE2s with 16 bytes of output: WireGuard's MAC, used for mac1 and mac2.
    public static func mac(key: UnsafeRawBufferPointer, _ message: UnsafeRawBufferPointer,
                           into output: UnsafeMutableRawBufferPointer) {
        var hasher = Hasher(outputByteCount: 16, key: key)
        hasher.update(message)
        hasher.finalize(into: output)
    }

    /// HMAC-BLAKE2s (RFC 2104 over BLAKE2s-256, block size 64) of the concatenation of `parts`.
    /// The output is secret material in Noise's HKDF, so it is a ``SecretKey``.
    public static func hmac(key: UnsafeRawBufferPointer, _ parts: UnsafeRawBufferPointer...) -> SecretKey {
        hmac(key: key, parts: parts)
    }

    static func hmac(key: UnsafeRawBufferPointer, parts: [UnsafeRawBufferPointer]) -> SecretKey {
        precondition(key.count <= blockByteCount, "HMAC-BLAKE2s keys longer than 64 bytes are not used here")
        var pad = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var inner = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        defer {
            withUnsafeMutableBytes(of: &pad) { secureZero($0) }
            withUnsafeMutableBytes(of: &inner) { secureZero($0) }
        }
        return withUnsafeMutableBytes(of: &pad) { padBytes in
            // Inner: H((K ^ ipad) || message)
            padBytes.copyMemory(from: key)
            for i in 0..<blockByteCount { padBytes[i] ^= 0x36 }
            var hasher = Hasher()
            hasher.update(UnsafeRawBufferPointer(padBytes))
            for part in parts { hasher.update(part) }
            return withUnsafeMutableBytes(of: &inner) { innerBytes in
                hasher.finalize(into: innerBytes)
                // Outer: H((K ^ opad) || inner)
                for i in 0..<blockByteCount { padBytes[i] ^= 0x36 ^ 0x5c }
                return SecretKey(filling: { out in
                    var outer = Hasher()
                    outer.update(UnsafeRawBufferPointer(padBytes))
                    outer.update(UnsafeRawBufferPointer(innerBytes))
                    outer.finalize(into: out)
                })
            }
        }
    }

    /// Noise's HKDF with HMAC-BLAKE2s: `count` (1...3) outputs of 32 bytes derived from
    /// `chainingKey` and `input` (Noise spec section 4.3; WireGuard whitepaper section 5.4 "Kdf_n").
    public static func hkdf(chainingKey: SecretKey, input: UnsafeRawBufferPointer, count: Int) -> [SecretKey] {
        precondition((1...3).contains(count), "HKDF gives 1 to 3 outputs")
        let temp = chainingKey.withUnsafeBytes { hmac(key: $0, parts: [input]) }
        var outputs: [SecretKey] = []
        outputs.reserveCapacity(count)
        var one: UInt8 = 1
        let first = temp.withUnsafeBytes { key in withUnsafeBytes(of: &one) { hmac(key: key, parts: [$0]) } }
        outputs.append(first)
        for index in 2...max(2, count) where index <= count {
            var counterByte = UInt8(index)
            let previous = outputs[index - 2]
            let next = temp.withUnsafeBytes { key in
                previous.withUnsafeBytes { prev in
                    withUnsafeBytes(of: &counterByte) { hmac(key: key, parts: [prev, $0]) }
                }
            }
            outputs.append(next)
        }
        return outputs
    }
}
