// SPDX-License-Identifier: MIT

/// Field offsets of WireGuard's handshake messages (whitepaper 5.4.2, 5.4.3, 5.4.7). All
/// integers are little-endian; every message opens with the type byte and three zero bytes.
///
/// ```
/// initiation (148)         response (92)            cookie reply (64)
///   0  type, reserved        0  type, reserved        0  type, reserved
///   4  sender index          4  sender index          4  receiver index
///   8  ephemeral (32)        8  receiver index        8  nonce (24)
///  40  static (32+16)       12  ephemeral (32)       32  cookie (16+16)
///  88  timestamp (12+16)    44  empty (0+16)
/// 116  mac1 (16)            60  mac1 (16)
/// 132  mac2 (16)            76  mac2 (16)
/// ```
public enum MessageLayout {
    /// Size of mac1 and mac2, and of a cookie (whitepaper 5.4.4).
    public static let macByteCount = 16

    /// Offsets in a handshake initiation (type 1, whitepaper 5.4.2).
    public enum Initiation {
        public static let senderIndex = 4
        public static let ephemeral = 8
        public static let encryptedStatic = 40
        public static let encryptedTimestamp = 88
        public static let mac1 = 116
        public static let mac2 = 132
        public static let size = 148
        /// The Noise message 1 (`e`, `s`, payload) inside the initiation.
        public static let noiseMessage = ephemeral..<mac1
    }

    /// Offsets in a handshake response (type 2, whitepaper 5.4.3).
    public enum Response {
        public static let senderIndex = 4
        public static let receiverIndex = 8
        public static let ephemeral = 12
        public static let encryptedNothing = 44
        public static let mac1 = 60
        public static let mac2 = 76
        public static let size = 92
        /// The Noise message 2 (`e`, empty payload) inside the response.
        public static let noiseMessage = ephemeral..<mac1
    }

    /// Offsets in a cookie reply (type 3, whitepaper 5.4.7).
    public enum CookieReply {
        public static let receiverIndex = 4
        public static let nonce = 8
        public static let encryptedCookie = 32
        public static let size = 64
    }
}
