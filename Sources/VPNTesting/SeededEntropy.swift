// SPDX-License-Identifier: MIT
import VPNBasics

/// A deterministic entropy source (SplitMix64), so tests and simulations are reproducible.
/// Never use it outside tests.
public struct SeededEntropy: EntropySource {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) { generator.fill(buffer) }
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
