// SPDX-License-Identifier: MIT

/// What a received datagram claims to be, after checks that need no key.
///
/// A classification is not trust: handshake messages still need their MACs checked and data
/// messages their tag. It only says which parser or session to hand the bytes to.
public enum WireClassification: Equatable, Sendable {
    /// A 148-byte handshake initiation (type 1).
    case initiation
    /// A 92-byte handshake response (type 2).
    case response
    /// A 64-byte cookie reply (type 3).
    case cookieReply
    /// A transport data message (type 4) with its receiver index and counter, not yet authenticated.
    case data(receiverIndex: UInt32, counter: UInt64)
    /// A path probe or echo (type 5) with its receiver index and counter, not yet authenticated.
    case probe(receiverIndex: UInt32, counter: UInt64)
    /// Not a well-formed WireGuard message; drop it for this reason.
    case invalid(DropReason)
}

/// Parsing helpers for the WireGuard message framing (whitepaper 5.4).
///
/// Everything here is pure, allocation-free and safe on arbitrary input.
public enum Wire {
    /// Classifies `bytes` without trusting them; never traps, whatever the input.
    ///
    /// Checks, in order: at least 4 bytes (else `truncated`); a type byte of 1 to 4 and three zero
    /// reserved bytes (else `unknownType`); the exact size for types 1 to 3 and
    /// ``Spec/dataMinimumSize`` to ``Spec/dataMaximumSize`` for type 4 (else `truncated` or
    /// `oversized`).
    ///
    /// - Parameter bytes: one received datagram (or one TCP frame), exactly.
    /// - Returns: the message kind, with the header fields of a data message.
    @inlinable
    public static func classify(_ bytes: UnsafeRawBufferPointer) -> WireClassification {
        guard bytes.count >= Spec.messagePrefixSize else { return .invalid(.truncated) }
        let prefix = bytes.loadLE32(at: 0)
        // The type byte is the low byte; the three reserved bytes must be zero.
        guard prefix & 0xFFFF_FF00 == 0, let type = MessageType(rawValue: UInt8(truncatingIfNeeded: prefix)) else {
            return .invalid(.unknownType)
        }
        if let size = type.fixedSize {
            if bytes.count < size { return .invalid(.truncated) }
            if bytes.count > size { return .invalid(.oversized) }
            switch type {
            case .initiation: return .initiation
            case .response: return .response
            default: return .cookieReply
            }
        }
        if type == .pathProbe {
            if bytes.count < PathProbe.minimumMessageSize { return .invalid(.truncated) }
            if bytes.count > Spec.dataMaximumSize { return .invalid(.oversized) }
            return .probe(receiverIndex: bytes.loadLE32(at: 4), counter: bytes.loadLE64(at: 8))
        }
        if bytes.count < Spec.dataMinimumSize { return .invalid(.truncated) }
        if bytes.count > Spec.dataMaximumSize { return .invalid(.oversized) }
        return .data(receiverIndex: bytes.loadLE32(at: 4), counter: bytes.loadLE64(at: 8))
    }

    /// The message type of `bytes` if its 4-byte prefix is well formed, without checking its size.
    @inlinable
    public static func messageType(_ bytes: UnsafeRawBufferPointer) -> MessageType? {
        guard bytes.count >= Spec.messagePrefixSize else { return nil }
        let prefix = bytes.loadLE32(at: 0)
        guard prefix & 0xFFFF_FF00 == 0 else { return nil }
        return MessageType(rawValue: UInt8(truncatingIfNeeded: prefix))
    }

    /// Writes the 4-byte prefix of a `type` message (type byte, three zero bytes) at `offset`.
    @inlinable
    public static func writePrefix(_ type: MessageType, to bytes: UnsafeMutableRawBufferPointer, at offset: Int = 0) {
        bytes.storeLE32(type.prefix, at: offset)
    }
}
