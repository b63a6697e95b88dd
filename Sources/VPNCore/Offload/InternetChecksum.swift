// SPDX-License-Identifier: MIT

/// The Internet checksum of RFC 1071: the one's complement of the one's complement sum of 16-bit words.
///
/// Sums stay unfolded in a `UInt64` in the machine's byte order: the one's complement sum does not
/// depend on byte order (RFC 1071 §2(B)), so the data is loaded 64 bits at a time in native order,
/// the overflows are counted and added back (the end-around carry), and the byte order is fixed
/// once when ``fold(_:)`` reduces the sum to 16 bits. Two partial sums combine with ``add(_:_:)``
/// as long as each covers an even number of bytes, except possibly the last.
///
/// Values returned by ``fold(_:)`` and ``checksum(_:initial:)`` are numbers in network order's
/// meaning: store them with `storeBE16`.
public enum InternetChecksum {
    /// The one's complement sum of two partial sums (a 64-bit add with end-around carry).
    @inlinable
    public static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return sum &+ (overflow ? 1 : 0)
    }

    /// The partial sum of one 16-bit field whose network-order value is `value` (a length or
    /// protocol number of a pseudo-header, for example).
    @inlinable
    public static func word(_ value: UInt16) -> UInt64 {
        UInt64(value.bigEndian)
    }

    /// The unfolded partial sum of `count` bytes at `base`, added to `initial`.
    ///
    /// An odd last byte counts as the high byte of a word padded with zero (RFC 1071 §4.1).
    @inlinable
    public static func sum(_ base: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var carries: UInt64 = 0
        var offset = 0
        var overflow = false
        while count - offset >= 32 {
            (acc, overflow) = acc.addingReportingOverflow(base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            carries &+= overflow ? 1 : 0
            (acc, overflow) = acc.addingReportingOverflow(
                base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            carries &+= overflow ? 1 : 0
            (acc, overflow) = acc.addingReportingOverflow(
                base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self))
            carries &+= overflow ? 1 : 0
            (acc, overflow) = acc.addingReportingOverflow(
                base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self))
            carries &+= overflow ? 1 : 0
            offset += 32
        }
        while count - offset >= 8 {
            (acc, overflow) = acc.addingReportingOverflow(base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            carries &+= overflow ? 1 : 0
            offset += 8
        }
        // Fewer than 8 bytes left: 32- and 16-bit words cannot overflow the carry counter.
        if count - offset >= 4 {
            carries &+= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            offset += 4
        }
        if count - offset >= 2 {
            carries &+= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            offset += 2
        }
        if count - offset == 1 {
            let last = base.load(fromByteOffset: offset, as: UInt8.self)
            carries &+= word(UInt16(last) &<< 8)
        }
        return add(acc, carries)
    }

    /// The unfolded partial sum of `bytes`, added to `initial`.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        guard let base = bytes.baseAddress else { return initial }
        return sum(base, count: bytes.count, initial: initial)
    }

    /// Reduces a partial sum to 16 bits (not complemented), as a network-order value.
    @inlinable
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = (sum & 0xFFFF_FFFF) &+ (sum &>> 32)
        s = (s & 0xFFFF_FFFF) &+ (s &>> 32)
        s = (s & 0xFFFF) &+ (s &>> 16)
        s = (s & 0xFFFF) &+ (s &>> 16)
        return UInt16(bigEndian: UInt16(truncatingIfNeeded: s))
    }

    /// The checksum of `bytes` (the complemented fold of their sum plus `initial`), as a
    /// network-order value; a region that already holds its correct checksum gives 0.
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt16 {
        ~fold(sum(bytes, initial: initial))
    }

    /// The partial sum of a TCP/UDP pseudo-header (RFC 793 §3.1, RFC 768, RFC 8200 §8.1).
    ///
    /// - Parameters:
    ///   - addresses: the source address immediately followed by the destination address, as in
    ///     the IPv4 (offset 12) and IPv6 (offset 8) headers.
    ///   - addressSize: 4 or 16.
    ///   - protocol: the transport protocol number (6 TCP, 17 UDP).
    ///   - length: the transport header plus payload length in bytes.
    @inlinable
    public static func pseudoHeaderSum(
        addresses: UnsafeRawPointer, addressSize: Int, protocol: UInt8, length: Int
    ) -> UInt64 {
        let addressSum = sum(addresses, count: 2 * addressSize)
        return add(addressSum, word(UInt16(`protocol`)) &+ UInt64(UInt32(truncatingIfNeeded: length).bigEndian))
    }
}
