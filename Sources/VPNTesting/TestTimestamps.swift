// SPDX-License-Identifier: MIT
import VPNCore

/// A wall clock stuck at one TAI64N value: every initiation carries the same timestamp, as from a
/// peer whose clock does not move (its second initiation is refused as `staleTimestamp`).
public struct FixedTimestamps: TimestampSource {
    /// The timestamp returned by every call.
    public var value: TAI64N

    /// A source that always returns `value`.
    public init(_ value: TAI64N = TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0)) { self.value = value }

    public mutating func timestamp() -> TAI64N { value }
}

/// A wall clock that moves forward by `step` seconds on every call, so each initiation carries a
/// timestamp newer than the last one, whatever the simulated time does.
public struct SteppingTimestamps: TimestampSource {
    /// The timestamp the next call returns.
    public private(set) var next: TAI64N
    /// Seconds added after each call.
    public let step: UInt64

    /// A source starting at `start` Unix seconds and advancing `step` seconds per call.
    public init(startUnixSeconds start: Int64 = 1_700_000_000, step: UInt64 = 1) {
        next = TAI64N(unixSeconds: start, nanoseconds: 0)
        self.step = step
    }

    public mutating func timestamp() -> TAI64N {
        let value = next
        next.seconds &+= step
        return value
    }
}
