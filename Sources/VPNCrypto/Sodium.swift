// SPDX-License-Identifier: MIT
import CSodium
import VPNBasics

/// libsodium's one-time initialisation.
public enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    /// Initialises libsodium; safe to call any number of times from any thread.
    /// Returns false only when libsodium cannot start (no entropy source).
    @discardableResult
    public static func initialise() -> Bool { initialised }
}

/// The operating system's entropy through libsodium's `randombytes_buf`.
public struct SystemEntropy: EntropySource, Sendable {
    public init() { Sodium.initialise() }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        randombytes_buf(base, buffer.count)
    }
}

/// Errors of the crypto layer.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// X25519 gave the all-zero shared secret: the peer's public key is of low order.
    case lowOrderPoint
    /// Authentication of a ciphertext failed.
    case authenticationFailed
    /// Key text was not valid base64 of exactly 32 bytes.
    case invalidKeyEncoding(String)

    public var description: String {
        switch self {
        case .lowOrderPoint: return "the peer's public key is a low-order point (shared secret is zero)"
        case .authenticationFailed: return "authentication failed"
        case .invalidKeyEncoding(let why): return why
        }
    }
}
