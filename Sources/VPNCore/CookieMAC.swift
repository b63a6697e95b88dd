// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Sixteen bytes held inline: a mac1, a mac2 or a cookie (whitepaper 5.4.4, 5.4.7).
struct CookieMAC: Sendable {
    var storage: (UInt64, UInt64) = (0, 0)

    /// Sixteen zero bytes.
    static let zero = CookieMAC()

    /// `MAC(key, message)`: keyed BLAKE2s with 16 bytes of output (whitepaper 5.4: `Mac`).
    init(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) {
        Swift.withUnsafeMutableBytes(of: &storage) { BLAKE2s.mac(key: key, message, into: $0) }
    }

    /// `MAC(key, message)` with a 32-byte key.
    init(key: Bytes32, message: UnsafeRawBufferPointer) {
        self = key.withUnsafeBytes { CookieMAC(key: $0, message: message) }
    }

    /// Copies 16 bytes.
    init(copying bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 16, "a MAC has 16 bytes")
        Swift.withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
    }

    private init() {}

    /// Calls `body` with the 16 bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var copy = storage
        return Swift.withUnsafeBytes(of: &copy, body)
    }

    /// Writes the 16 bytes to `bytes`.
    func write(to bytes: UnsafeMutableRawBufferPointer) {
        precondition(bytes.count == 16, "a MAC has 16 bytes")
        withUnsafeBytes { bytes.copyMemory(from: $0) }
    }

    /// Constant-time comparison with 16 bytes of a message.
    func constantTimeEquals(_ bytes: UnsafeRawBufferPointer) -> Bool {
        withUnsafeBytes { VPNCrypto.constantTimeEquals($0, bytes) }
    }

    /// Wipes the value.
    mutating func clear() {
        Swift.withUnsafeMutableBytes(of: &storage) { secureZero($0) }
    }
}

/// Where mac1 and mac2 sit in a handshake message (initiation or response): the last 32 bytes.
enum MACFields {
    /// The offset of mac1 in a message of `count` bytes.
    static func mac1Offset(_ count: Int) -> Int { count - 2 * MessageLayout.macByteCount }
    /// The offset of mac2 in a message of `count` bytes.
    static func mac2Offset(_ count: Int) -> Int { count - MessageLayout.macByteCount }

    /// The message up to mac1 (what mac1 covers).
    static func mac1Covered(_ message: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: message[0..<mac1Offset(message.count)])
    }

    /// The message up to mac2 (what mac2 covers, mac1 included).
    static func mac2Covered(_ message: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: message[0..<mac2Offset(message.count)])
    }

    /// The mac1 field.
    static func mac1(_ message: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let start = mac1Offset(message.count)
        return UnsafeRawBufferPointer(rebasing: message[start..<(start + MessageLayout.macByteCount)])
    }

    /// The mac2 field.
    static func mac2(_ message: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: message[mac2Offset(message.count)...])
    }

    /// True for a message that carries mac1 and mac2: a whole initiation or response.
    static func isHandshakeMessage(_ message: UnsafeRawBufferPointer) -> Bool {
        switch Wire.classify(message) {
        case .initiation, .response: return true
        default: return false
        }
    }
}
