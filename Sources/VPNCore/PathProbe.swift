// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// vpnd's path-MTU probe and echo (message type 5; docs/protocol.md, "Path probes").
///
/// Laid out like transport data: type 5, three zero bytes, the receiver index (LE32), the counter
/// (LE64), then a ChaCha20-Poly1305 body sealed with the session's sending key and nonce counter,
/// and its tag. Unlike transport data, the 16-byte header is the associated data, so a probe
/// cannot be turned into a data message (or back) by changing its type byte. The counter is the
/// keypair's own sending counter, so probes and data never share a nonce and the receiver's
/// replay window covers both.
///
/// The body: kind (1 = probe, 2 = echo), three zero bytes, the probe id (LE32), the probed size
/// (LE16), two zero bytes, then zeros up to the body's length. A probe's body is as long as the
/// inner packet size it tests, so the datagram is exactly as large as a data message carrying a
/// packet of that size. An echo's body is 16 bytes: small, so that it tests one direction only.
public enum PathProbe {
    /// What a probe body says it is.
    public enum Kind: UInt8, Sendable {
        case probe = 1
        case echo = 2
    }

    /// The fields of an authenticated probe or echo.
    public struct Body: Equatable, Sendable {
        public var kind: Kind
        public var id: UInt32
        public var size: Int
    }

    /// The result of ``open(_:key:replay:)``.
    public enum OpenResult: Equatable, Sendable {
        case ok(Body)
        case drop(DropReason)
    }

    /// The body of an echo, and the shortest body a probe may have.
    public static let minimumBodySize = 16
    /// The shortest whole message: header, body, tag.
    public static let minimumMessageSize = Spec.dataHeaderSize + minimumBodySize + Spec.tagSize

    /// Writes a sealed probe or echo into `buffer` (emptied first), with a body of `bodySize` bytes.
    ///
    /// - Parameters:
    ///   - buffer: needs ``TransportData/headroom`` in front and `bodySize` + 16 bytes of tailroom.
    ///   - size: the inner packet size the probe tests (an echo repeats the probe's).
    public static func seal(
        _ kind: Kind, id: UInt32, size: Int, bodySize: Int, into buffer: inout PacketBuffer, receiverIndex: UInt32,
        counter: UInt64, key: TransportKey
    ) {
        precondition(bodySize >= minimumBodySize, "a path probe body has at least 16 bytes")
        let body = buffer.append(bodySize)
        body.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: bodySize)
        body.storeBytes(of: kind.rawValue, toByteOffset: 0, as: UInt8.self)
        body.storeLE32(id, at: 4)
        body.storeLE16(UInt16(clamping: size), at: 8)
        let tag = buffer.append(Spec.tagSize)
        let header = buffer.prepend(Spec.dataHeaderSize)
        header.storeLE32(MessageType.pathProbe.prefix, at: 0)
        header.storeLE32(receiverIndex, at: 4)
        header.storeLE64(counter, at: 8)
        key.seal(body, tag: tag.baseAddress!, counter: counter, authenticating: UnsafeRawBufferPointer(header))
    }

    /// Authenticates and reads a probe or echo in `datagram` (a whole type-5 message), marking its
    /// counter in `replay` only once it authenticated.
    public static func open(_ datagram: inout PacketBuffer, key: TransportKey, replay: inout ReplayWindow) -> OpenResult {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        guard case .probe(_, let counter) = Wire.classify(message) else { return .drop(.unknownType) }
        guard counter < key.cipher.rejectAfterMessages else { return .drop(.counterLimit) }
        guard replay.wouldAccept(counter) else { return .drop(.replayed) }
        let bodyCount = message.count - Spec.dataHeaderSize - Spec.tagSize
        let base = datagram.bytes.baseAddress!
        let header = UnsafeRawBufferPointer(start: base, count: Spec.dataHeaderSize)
        let body = UnsafeMutableRawBufferPointer(start: base + Spec.dataHeaderSize, count: bodyCount)
        guard key.open(body, tag: base + Spec.dataHeaderSize + bodyCount, counter: counter, authenticating: header)
        else { return .drop(.authenticationFailed) }
        guard replay.accept(counter) else { return .drop(.replayed) }
        guard let kind = Kind(rawValue: body.load(fromByteOffset: 0, as: UInt8.self)) else { return .drop(.malformedInnerPacket) }
        return .ok(Body(kind: kind, id: UnsafeRawBufferPointer(body).loadLE32(at: 4), size: Int(UnsafeRawBufferPointer(body).loadLE16(at: 8))))
    }
}
