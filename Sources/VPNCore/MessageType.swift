// SPDX-License-Identifier: MIT

/// The message types, by their type byte: WireGuard's four (whitepaper 5.4) and vpnd's path probe.
public enum MessageType: UInt8, CaseIterable, Sendable {
    /// Handshake initiation, 148 bytes (whitepaper 5.4.2).
    case initiation = 1
    /// Handshake response, 92 bytes (whitepaper 5.4.3).
    case response = 2
    /// Cookie reply, 64 bytes (whitepaper 5.4.7).
    case cookieReply = 3
    /// Transport data, 32 bytes or more (whitepaper 5.4.6).
    case transportData = 4
    /// vpnd's path-MTU probe and its echo (docs/protocol.md): laid out like transport data, sealed
    /// with the session key and the header as associated data. WireGuard implementations drop
    /// this type as unknown, so vpnd sends it to any peer and learns from the echoes of vpnd peers.
    case pathProbe = 5

    /// The exact size of a message of this type, or nil for transport data (variable length).
    @inlinable
    public var fixedSize: Int? {
        switch self {
        case .initiation: return Spec.initiationSize
        case .response: return Spec.responseSize
        case .cookieReply: return Spec.cookieReplySize
        case .transportData, .pathProbe: return nil
        }
    }

    /// The 4-byte little-endian prefix that opens a message of this type: the type byte, then
    /// three zero bytes.
    @inlinable
    public var prefix: UInt32 { UInt32(rawValue) }
}
