// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The bytes of a hex literal; traps on a malformed literal (a bug in the test itself).
func hex(_ text: String) -> [UInt8] {
    guard let bytes = Hex.decode(text.filter { !$0.isWhitespace }) else { preconditionFailure("bad hex literal: \(text)") }
    return bytes
}

/// A secret key from a 64-digit hex literal.
func secretKey(_ text: String) -> SecretKey {
    guard let key = SecretKey(hex(text)) else { preconditionFailure("not 32 bytes: \(text)") }
    return key
}

/// A public key (or any 32 bytes) from a 64-digit hex literal.
func bytes32(_ text: String) -> Bytes32 {
    guard let value = Bytes32(hex(text)) else { preconditionFailure("not 32 bytes: \(text)") }
    return value
}

/// The bytes `0, 1, ..., count - 1` (mod 256), the input pattern of the BLAKE2 reference vectors.
func sequence(_ count: Int, from first: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: first + $0) }
}
