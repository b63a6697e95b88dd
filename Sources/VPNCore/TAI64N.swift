// SPDX-License-Identifier: MIT

/// A TAI64N timestamp: 8 bytes of TAI64 seconds label and 4 bytes of nanoseconds, both
/// big-endian (whitepaper 5.4.2; https://cr.yp.to/libtai/tai64.html).
///
/// The core reads no clock: the caller builds one from the wall clock with
/// ``init(unixSeconds:nanoseconds:)`` and hands it to the initiator. A responder keeps, per peer,
/// the greatest timestamp it accepted and drops an initiation whose timestamp is not strictly
/// greater (`staleTimestamp`), which defeats replayed initiations. Values compare as their
/// 12 big-endian bytes do.
public struct TAI64N: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Size on the wire in bytes.
    public static let byteCount = 12
    /// The TAI64 label of the Unix epoch: 2^62 + 10 (TAI was 10 s ahead of UTC in 1970), as
    /// djb's libtai and wireguard-go's `tai64n` package use.
    public static let unixEpochLabel: UInt64 = 0x4000_0000_0000_000A
    /// Nanoseconds are rounded down to a multiple of 2^24 ns (about 16.8 ms), as wireguard-go
    /// does, so that the timestamp does not leak fine-grained timing of the sender.
    public static let whiteningMask: UInt32 = (1 << 24) - 1

    /// The TAI64 seconds label.
    public var seconds: UInt64
    /// Nanoseconds within the second (a received value is taken as is, even above 999,999,999).
    public var nanoseconds: UInt32

    /// A timestamp from its raw fields, without whitening.
    public init(seconds: UInt64, nanoseconds: UInt32) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// The whitened timestamp of a wall-clock time: `2^62 + 10 + unixSeconds`, and the
    /// nanoseconds rounded down to a multiple of 2^24.
    ///
    /// - Parameters:
    ///   - unixSeconds: seconds since 1970-01-01 UTC (`CLOCK_REALTIME`).
    ///   - nanoseconds: nanoseconds within that second.
    public init(unixSeconds: Int64, nanoseconds: UInt32) {
        seconds = Self.unixEpochLabel &+ UInt64(bitPattern: unixSeconds)
        self.nanoseconds = nanoseconds & ~Self.whiteningMask
    }

    /// Reads 12 big-endian bytes.
    public init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == Self.byteCount, "a TAI64N timestamp has 12 bytes")
        seconds = UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
        nanoseconds = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    }

    /// Writes the 12 big-endian bytes to `bytes`.
    public func write(to bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count == Self.byteCount, "a TAI64N timestamp has 12 bytes")
        bytes.storeBytes(of: seconds.bigEndian, toByteOffset: 0, as: UInt64.self)
        bytes.storeBytes(of: nanoseconds.bigEndian, toByteOffset: 8, as: UInt32.self)
    }

    public static func < (lhs: TAI64N, rhs: TAI64N) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    /// `@<24 hex digits>`, the TAI64N external format.
    public var description: String {
        let s = String(seconds, radix: 16)
        let n = String(nanoseconds, radix: 16)
        return "@" + String(repeating: "0", count: 16 - s.count) + s + String(repeating: "0", count: 8 - n.count) + n
    }
}
