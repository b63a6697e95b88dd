// SPDX-License-Identifier: MIT

/// A source of random bytes, injected wherever the protocol needs randomness.
///
/// Production uses `SystemEntropy` (libsodium's `randombytes_buf`, in VPNCrypto); tests use
/// `SeededEntropy` (VPNTesting) so that runs are reproducible.
public protocol EntropySource {
    /// Fills `buffer` with random bytes.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

extension EntropySource {
    /// A uniformly random 32-bit value.
    public mutating func nextUInt32() -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }

    /// A uniformly random 64-bit value.
    public mutating func nextUInt64() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }

    /// A uniformly random value below `bound` (`bound` > 0), without modulo bias.
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "next(below:) needs a positive bound")
        let limit = UInt64.max - (UInt64.max % bound)
        while true {
            let value = nextUInt64()
            if value < limit { return value % bound }
        }
    }
}
