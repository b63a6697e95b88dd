// SPDX-License-Identifier: MIT

/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// The protocol core never reads a clock: instants are handed to it. On Linux they come from
/// `CLOCK_BOOTTIME` (so time spent suspended still counts towards key expiry); in tests from a
/// `ManualClock`.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: UInt64

    @inlinable
    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The clock's origin.
    public static let zero = Instant(nanoseconds: 0)

    @inlinable
    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// `lhs` moved forward by `rhs` (saturating; a negative duration moves it back, not below zero).
    @inlinable
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let delta = rhs.nanosecondsClamped
        if delta >= 0 {
            let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(UInt64(delta))
            return Instant(nanoseconds: overflow ? .max : sum)
        }
        let magnitude = delta.magnitude
        return Instant(nanoseconds: lhs.nanoseconds >= magnitude ? lhs.nanoseconds - magnitude : 0)
    }

    @inlinable
    public static func - (lhs: Instant, rhs: Duration) -> Instant { lhs + (.zero - rhs) }

    /// The time from `rhs` to `lhs`; negative when `lhs` is earlier.
    @inlinable
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        if lhs.nanoseconds >= rhs.nanoseconds {
            return .nanoseconds(Int64(clamping: lhs.nanoseconds - rhs.nanoseconds))
        }
        return .zero - .nanoseconds(Int64(clamping: rhs.nanoseconds - lhs.nanoseconds))
    }

    public var description: String {
        let seconds = nanoseconds / 1_000_000_000
        let millis = (nanoseconds / 1_000_000) % 1000
        let pad = millis < 10 ? "00" : (millis < 100 ? "0" : "")
        return "\(seconds).\(pad)\(millis)s"
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to `Int64`.
    @inlinable
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }
}

/// A source of the current time. The data plane reads it once per loop iteration.
public protocol Clock: AnyObject {
    /// The current instant.
    func now() -> Instant
}
