// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// One packet slot of `capacity` bytes, for tests; the slab lives as long as the value.
final class TestSlot {
    let slab: PacketSlab
    init(capacity: Int = 2048) { slab = PacketSlab(slotSize: capacity, slotCount: 1) }

    /// A buffer holding `bytes` with `headroom` bytes in front.
    func buffer(_ bytes: [UInt8], headroom: Int = TransportData.headroom) -> PacketBuffer {
        var buffer = slab.buffer(0, headroom: headroom)
        bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
        return buffer
    }
}

extension PacketBuffer {
    /// The packet's bytes as an array (tests only).
    var array: [UInt8] { Array(UnsafeRawBufferPointer(bytes)) }
}

extension SeededEntropy {
    /// The next 64 random bits.
    mutating func nextUInt64() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }

    /// A value in `0..<bound` (bound > 0), with negligible bias for test purposes.
    mutating func next(below bound: Int) -> Int { Int(nextUInt64() % UInt64(bound)) }

    /// `count` random bytes.
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }
}

/// Thirty-two fixed key bytes 0x80...0x9f (also used by the known-answer test).
func framingTestKey() -> SecretKey { SecretKey(Array(0x80...0x9F))! }

/// A syntactically valid IPv4 packet of `totalLength` bytes (≥ 20), 10.8.0.1 → 10.8.0.2, UDP.
func ipv4Packet(totalLength: Int, fill: UInt8 = 0xA5) -> [UInt8] {
    precondition(totalLength >= 20)
    var p = [UInt8](repeating: fill, count: totalLength)
    p[0] = 0x45
    p[1] = 0
    p[2] = UInt8(totalLength >> 8)
    p[3] = UInt8(totalLength & 0xFF)
    p[4...7] = [0, 1, 0x40, 0]
    p[8] = 64
    p[9] = 17
    p[10...11] = [0, 0]
    p[12...15] = [10, 8, 0, 1]
    p[16...19] = [10, 8, 0, 2]
    return p
}

/// A syntactically valid IPv6 packet with `payloadLength` payload bytes, fd00::1 → fd00::2, UDP.
func ipv6Packet(payloadLength: Int, fill: UInt8 = 0x5A) -> [UInt8] {
    var p = [UInt8](repeating: fill, count: 40 + payloadLength)
    p[0...3] = [0x60, 0, 0, 0]
    p[4] = UInt8(payloadLength >> 8)
    p[5] = UInt8(payloadLength & 0xFF)
    p[6] = 17
    p[7] = 64
    p[8..<24] = [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1][...]
    p[24..<40] = [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2][...]
    return p
}

/// `n` rounded up to a multiple of 16.
func roundUp16(_ n: Int) -> Int { (n + 15) / 16 * 16 }
