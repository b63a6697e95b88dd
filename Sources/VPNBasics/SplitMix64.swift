// SPDX-License-Identifier: MIT

/// SplitMix64 (Steele, Lea, Flood 2014): a Weyl sequence through a 64-bit mixing function. Fast,
/// with no system call, and **not cryptographic**: for timer jitter (the protocol core) and for
/// reproducible test entropy (VPNTesting's `SeededEntropy`), never for keys, ephemerals or
/// indexes. Bytes come out in the machine's byte order, 8 per step.
public struct SplitMix64: EntropySource {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var i = 0
        while i < buffer.count {
            var word = next()
            withUnsafeBytes(of: &word) { bytes in
                for b in bytes where i < buffer.count {
                    buffer[i] = b
                    i += 1
                }
            }
        }
    }
}
