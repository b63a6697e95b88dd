// SPDX-License-Identifier: MIT
import VPNBasics

/// Random timer jitter (the 0–333 ms added to handshake retries and to the new-handshake timer)
/// without a system call: SplitMix64, seeded once from the tunnel's entropy.
///
/// Jitter only spreads timers so that peers do not fire in lockstep; it protects nothing, so it
/// needs no cryptographic generator, and the data path must not pay a `getrandom` per packet
/// for it (wireguard-go and the Linux driver use a fast non-cryptographic generator here too).
/// Keys, ephemerals and indexes still come from the cryptographic ``EntropySource``.
struct JitterSource: EntropySource {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < buffer.count {
            let value = next()
            let count = min(8, buffer.count - offset)
            withUnsafeBytes(of: value.littleEndian) { bytes in
                for i in 0..<count { buffer[offset + i] = bytes[i] }
            }
            offset += count
        }
    }

    /// SplitMix64 (Steele, Lea, Flood 2014): a Weyl sequence through a 64-bit mixing function.
    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
