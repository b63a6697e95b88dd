// SPDX-License-Identifier: MIT

/// Thirty-two bytes held inline: a public key, a hash, an index-free identifier.
///
/// Not for secrets: use VPNCrypto's `SecretKey`, which zeroes itself and never prints.
public struct Bytes32: Hashable, Sendable {
    @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64)

    /// Thirty-two zero bytes.
    @inlinable
    public init() { storage = (0, 0, 0, 0) }

    /// Copies exactly 32 bytes from `bytes`.
    @inlinable
    public init(copying bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "Bytes32 needs exactly 32 bytes")
        storage = (0, 0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
    }

    /// Copies 32 bytes from `bytes`; nil when it does not hold exactly 32.
    @inlinable
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        storage = (0, 0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &storage) { target in
            for (i, byte) in bytes.enumerated() { target[i] = byte }
        }
    }

    /// Calls `body` with the 32 bytes.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        var copy = storage
        return try Swift.withUnsafeBytes(of: &copy) { (raw) throws(E) -> R in try body(raw) }
    }

    /// Calls `body` with the 32 bytes, writable.
    @inlinable
    public mutating func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try Swift.withUnsafeMutableBytes(of: &storage) { (raw) throws(E) -> R in try body(raw) }
    }

    /// The bytes as an array (for tests and the control plane; never per packet).
    public var array: [UInt8] { withUnsafeBytes { Array($0) } }

    /// True when all 32 bytes are zero.
    @inlinable
    public var isZero: Bool { storage == (0, 0, 0, 0) }

    @inlinable
    public static func == (lhs: Bytes32, rhs: Bytes32) -> Bool { lhs.storage == rhs.storage }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
        hasher.combine(storage.3)
    }
}

extension Bytes32: CustomStringConvertible {
    /// Lower-case hex.
    public var description: String { Hex.encode(array) }
}

/// Hex encoding for tests, logs of public values and the control plane.
public enum Hex {
    /// Lower-case hex of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits: [Character] = Array("0123456789abcdef")
        var out = ""
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return out
    }

    /// The bytes of a hex string; nil on an odd length or a non-hex character.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
