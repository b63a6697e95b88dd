// SPDX-License-Identifier: MIT

/// The receive-side replay filter of one keypair: RFC 6479's sliding bitmap.
///
/// A ring of 128 blocks of 64 bits remembers which counters were seen. The block holding the
/// highest counter accepted so far is always kept, so the window covers
/// ``Spec/replayWindowSize`` (8128 = 127 × 64) counters behind the highest one, as
/// wireguard-go's filter does. Precisely: with `highest` the largest counter accepted, a counter
/// `c` is accepted once when `c > highest`, or when `highest − c <= 8128` and `c` was not seen;
/// `c == highest − 8129` and older are refused. Counters at or past
/// ``Spec/rejectAfterMessages`` are always refused. A fresh window accepts counter 0.
///
/// The bitmap is stored inline (1 KiB), so the window travels with its keypair and costs no
/// allocation. Check with ``wouldAccept(_:)`` before decrypting and mark with ``accept(_:)`` only
/// after the packet authenticated (whitepaper 5.4.6), so forged packets cannot move the window.
///
/// Not thread-safe; owned by one data-plane thread.
public struct ReplayWindow: Sendable {
    @usableFromInline static let blockShift: UInt64 = 6
    @usableFromInline static let bitMask: UInt64 = 63
    @usableFromInline static let ringMask: UInt64 = 127
    @usableFromInline static let ringBlocks: UInt64 = 128

    @usableFromInline var ring: InlineArray<128, UInt64>
    @usableFromInline var highest: UInt64

    /// An empty window: nothing seen, counter 0 acceptable.
    @inlinable
    public init() {
        ring = InlineArray(repeating: 0)
        highest = 0
    }

    /// The largest counter accepted so far; 0 for a fresh window.
    @inlinable
    public var highestCounter: UInt64 { highest }

    /// True when ``accept(_:)`` would accept `counter` now; changes nothing.
    ///
    /// Use it to refuse a replayed or stale packet before spending a decryption on it.
    @inlinable
    public func wouldAccept(_ counter: UInt64) -> Bool {
        guard counter < Spec.rejectAfterMessages else { return false }
        if counter > highest { return true }
        if highest - counter > UInt64(Spec.replayWindowSize) { return false }
        let slot = Int((counter >> Self.blockShift) & Self.ringMask)
        return ring[slot] & (1 << (counter & Self.bitMask)) == 0
    }

    /// Marks `counter` as seen, sliding the window forward when it is the highest yet.
    ///
    /// - Returns: true when the counter was new and inside the window; false for a duplicate, a
    ///   counter too old for the window, or one at or past ``Spec/rejectAfterMessages`` (nothing
    ///   changes then).
    @inlinable
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard counter < Spec.rejectAfterMessages else { return false }
        let block = counter >> Self.blockShift
        if counter > highest {
            // Clear the blocks the window slides over; a jump of a whole ring or more clears all.
            let current = highest >> Self.blockShift
            let advance = min(block - current, Self.ringBlocks)
            var next = current + 1
            let end = next + advance
            // A plain loop: iterating a Range<UInt64> goes through unspecialised generic code
            // (and allocates) in debug builds.
            while next < end {
                ring[Int(next & Self.ringMask)] = 0
                next += 1
            }
            highest = counter
        } else if highest - counter > UInt64(Spec.replayWindowSize) {
            return false
        }
        let slot = Int(block & Self.ringMask)
        let bit: UInt64 = 1 << (counter & Self.bitMask)
        let old = ring[slot]
        if old & bit != 0 { return false }
        ring[slot] = old | bit
        return true
    }

    /// Forgets everything: the window is fresh again.
    @inlinable
    public mutating func reset() {
        self = ReplayWindow()
    }
}
