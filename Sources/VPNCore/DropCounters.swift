// SPDX-License-Identifier: MIT

/// How many messages or packets were dropped, for each ``DropReason``: one per peer and one for
/// drops no peer can be blamed for. Counting allocates nothing.
public struct DropCounters: Sendable {
    private var counts: [UInt64]

    public init() {
        counts = [UInt64](repeating: 0, count: DropReason.allCases.count)
    }

    /// Counts one drop for `reason`.
    @inline(__always)
    public mutating func count(_ reason: DropReason) {
        counts[Int(reason.rawValue)] &+= 1
    }

    /// The drops counted for `reason`.
    public subscript(reason: DropReason) -> UInt64 { counts[Int(reason.rawValue)] }

    /// The reasons with at least one drop, for `vpnd show`.
    public var table: [DropReason: UInt64] {
        var out: [DropReason: UInt64] = [:]
        for reason in DropReason.allCases where counts[Int(reason.rawValue)] > 0 {
            out[reason] = counts[Int(reason.rawValue)]
        }
        return out
    }
}
