// SPDX-License-Identifier: MIT
import VPNBasics

/// A clock that moves only when a test says so.
public final class ManualClock: Clock {
    public private(set) var current: Instant

    public init(start: Instant = Instant(nanoseconds: 1_000_000_000)) { current = start }

    public func now() -> Instant { current }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Duration) { current = current + duration }

    /// Moves the clock to `instant` (never backwards).
    public func advance(to instant: Instant) {
        precondition(instant >= current, "ManualClock cannot go backwards")
        current = instant
    }
}
