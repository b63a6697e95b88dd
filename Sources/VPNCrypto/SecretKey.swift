// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// Thirty-two secret bytes: a private key, a pre-shared key, a chaining key, a session key.
///
/// The bytes live in their own allocation, are zeroed with `sodium_memzero` when the last
/// reference goes, compare in constant time, and print as `<redacted>`. Immutable once built:
/// derivations make new keys. Allocated per handshake, never per packet.
public final class SecretKey: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    // The one @unchecked Sendable of VPNCrypto: `storage` is written only in init and zeroed in
    // deinit, when no other reference can exist, so shared reads are race-free.
    @usableFromInline let storage: UnsafeMutableRawPointer
    /// Test hook: sees the bytes in `deinit` after they are zeroed and before they are freed.
    let zeroingProbe: ((UnsafeRawBufferPointer) -> Void)?

    /// Size of every secret key in bytes.
    public static let byteCount = 32

    /// Copies exactly 32 bytes.
    public init(copying bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == Self.byteCount, "SecretKey needs exactly 32 bytes")
        storage = UnsafeMutableRawPointer.allocate(byteCount: Self.byteCount, alignment: 16)
        storage.copyMemory(from: bytes.baseAddress!, byteCount: Self.byteCount)
        zeroingProbe = nil
    }

    /// Tests only: a key whose `deinit` calls `probe` with its bytes once they are zeroed, while
    /// the allocation is still valid.
    init(copying bytes: [UInt8], zeroingProbe probe: @escaping (UnsafeRawBufferPointer) -> Void) {
        precondition(bytes.count == Self.byteCount, "SecretKey needs exactly 32 bytes")
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Self.byteCount, alignment: 16)
        bytes.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: Self.byteCount) }
        storage = memory
        zeroingProbe = probe
    }

    /// Fills a new key by calling `body` with its 32 writable bytes.
    public init(filling body: (UnsafeMutableRawBufferPointer) -> Void) {
        storage = UnsafeMutableRawPointer.allocate(byteCount: Self.byteCount, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: Self.byteCount)
        body(UnsafeMutableRawBufferPointer(start: storage, count: Self.byteCount))
        zeroingProbe = nil
    }

    /// Thirty-two random bytes from `entropy`.
    public convenience init(random entropy: inout some EntropySource) {
        self.init(filling: { entropy.fill($0) })
    }

    /// Thirty-two bytes from an array (tests and config parsing); nil unless exactly 32.
    public convenience init?(_ bytes: [UInt8]) {
        guard bytes.count == Self.byteCount else { return nil }
        self.init(copying: bytes.withUnsafeBytes { $0 })
    }

    /// The all-zero key (Noise's empty chaining value, and the PSK when none is configured).
    public static func zero() -> SecretKey { SecretKey(filling: { _ in }) }

    deinit {
        sodium_memzero(storage, Self.byteCount)
        zeroingProbe?(UnsafeRawBufferPointer(start: storage, count: Self.byteCount))
        storage.deallocate()
    }

    /// Calls `body` with the secret bytes. Do not let them escape.
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: storage, count: Self.byteCount))
    }

    /// Constant-time equality.
    public func constantTimeEquals(_ other: SecretKey) -> Bool {
        sodium_memcmp(storage, other.storage, Self.byteCount) == 0
    }

    /// True when every byte is zero, checked in constant time.
    public var isZero: Bool {
        sodium_is_zero(storage.assumingMemoryBound(to: UInt8.self), Self.byteCount) == 1
    }

    /// The bytes as an array: only for writing a key file or a test; the caller must clear it.
    public func exposedBytes() -> [UInt8] { withUnsafeBytes { Array($0) } }

    /// Always `<redacted>`: the bytes never reach a log line or an interpolated string.
    public var description: String { "<redacted>" }
    /// Always `<redacted>`.
    public var debugDescription: String { "<redacted>" }
    /// No children, so `dump` and other reflection show `<redacted>` too.
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .class) }
}

/// Constant-time comparison of two equally long byte ranges.
@inlinable
public func constantTimeEquals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    guard a.count == b.count else { return false }
    if a.count == 0 { return true }
    return sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
}

/// Zeroes `bytes` in a way the optimiser cannot remove.
@inlinable
public func secureZero(_ bytes: UnsafeMutableRawBufferPointer) {
    if let base = bytes.baseAddress { sodium_memzero(base, bytes.count) }
}
