// SPDX-License-Identifier: MIT
import VPNBasics

/// A deterministic entropy source (SplitMix64), so tests and simulations are reproducible.
/// Never use it outside tests.
public struct SeededEntropy: EntropySource {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    private mutating func next() -> UInt64 {
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

/// Entropy that replays fixed bytes, e.g. the ephemeral keys of a test vector.
public struct ScriptedEntropy: EntropySource {
    private var chunks: [[UInt8]]

    public init(_ chunks: [[UInt8]]) { self.chunks = chunks }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        precondition(!chunks.isEmpty, "ScriptedEntropy ran out of bytes")
        let chunk = chunks.removeFirst()
        precondition(chunk.count == buffer.count, "ScriptedEntropy chunk of \(chunk.count) bytes, asked for \(buffer.count)")
        buffer.copyBytes(from: chunk)
    }
}
