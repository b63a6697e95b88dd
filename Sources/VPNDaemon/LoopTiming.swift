// SPDX-License-Identifier: MIT
import VPNBasics

/// How long the data plane's loop iterations take: from the end of one wait (the clock read the
/// loop makes anyway when readiness or a deadline wakes it) to the start of the next wait (the
/// clock read it makes anyway to compute the timeout), i.e. the work of one iteration, not the
/// time spent asleep. A histogram with fixed buckets (``bucketBounds``), the count, the sum and
/// the longest iteration since the previous status snapshot.
///
/// A value with inline storage: recording allocates nothing and takes no lock (it runs once per
/// loop iteration, never per packet). Owned by the data-plane thread; copies travel in
/// ``DataPlaneStatus``.
public struct LoopTiming: Sendable {
    /// The buckets' upper bounds in nanoseconds (Prometheus `le`, inclusive); one more bucket,
    /// +Inf, holds the rest.
    public static let bucketBounds: [UInt64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
        50_000_000,
    ]
    /// Iterations per bucket (not cumulative), the last one +Inf.
    private var counts = InlineArray<12, UInt64>(repeating: 0)
    /// Iterations recorded.
    public private(set) var count: UInt64 = 0
    /// Their total time in nanoseconds.
    public private(set) var totalNanoseconds: UInt64 = 0
    /// The longest iteration since the data plane last published a snapshot, in nanoseconds.
    public internal(set) var longestNanoseconds: UInt64 = 0

    public init() {
        precondition(counts.count == Self.bucketBounds.count + 1, "LoopTiming: one count per bound, and +Inf")
    }

    /// Counts one iteration that took `nanoseconds`.
    @inline(__always)
    public mutating func record(nanoseconds: UInt64) {
        var index = Self.bucketBounds.count
        for i in 0..<Self.bucketBounds.count where nanoseconds <= Self.bucketBounds[i] {
            index = i
            break
        }
        counts[index] &+= 1
        count &+= 1
        totalNanoseconds &+= nanoseconds
        if nanoseconds > longestNanoseconds { longestNanoseconds = nanoseconds }
    }

    /// Counts the iteration from `start` to `end` (an earlier `end` counts as 0).
    @inline(__always)
    public mutating func record(from start: Instant, to end: Instant) {
        record(nanoseconds: end.nanoseconds >= start.nanoseconds ? end.nanoseconds - start.nanoseconds : 0)
    }

    /// Iterations that took at most `bucketBounds[index]` (cumulative, as Prometheus buckets are);
    /// `index == bucketBounds.count` is +Inf, which is ``count``.
    public func cumulativeCount(_ index: Int) -> UInt64 {
        precondition(index >= 0 && index <= Self.bucketBounds.count, "LoopTiming: no bucket \(index)")
        var sum: UInt64 = 0
        for i in 0...index { sum &+= counts[i] }
        return sum
    }
}
