// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics

/// The ``Clock`` of the data plane: `CLOCK_BOOTTIME`, monotonic and counting time suspended, so
/// key lifetimes keep running across a suspend. Thread-safe.
public final class BootClock: Clock, Sendable {
    public init() {}

    /// The current instant. The corresponding C call is `clock_gettime(CLOCK_BOOTTIME)`.
    public func now() -> Instant {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return Instant(nanoseconds: UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec))
    }
}

/// The wall-clock time (for TAI64N handshake timestamps): seconds and nanoseconds since the Unix
/// epoch. The corresponding C call is `clock_gettime(CLOCK_REALTIME)`.
public func wallClockNow() -> (seconds: Int64, nanoseconds: Int32) {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return (Int64(time.tv_sec), Int32(time.tv_nsec))
}
