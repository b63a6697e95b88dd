// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Sealing and opening WireGuard transport data messages (type 4) in place (whitepaper 5.4.6).
///
/// A data message is a 16-byte header (type 4, three zero bytes, the receiver's index as LE32, the
/// counter as LE64) followed by the zero-padded packet sealed with ChaCha20-Poly1305 under the
/// session key, nonce = 32 zero bits ‖ LE64 counter, no associated data. A keepalive has an empty
/// plaintext and is 32 bytes long.
///
/// Buffers must be reserved with ``headroom`` in front and ``tailroom`` behind the largest packet
/// (the TCP transport writes its length prefix into the connection's send queue, not in front). Both functions only
/// move the ``PacketBuffer`` bounds and work on its bytes: no allocation, no copy.
public enum TransportData {
    /// Bytes of headroom ``seal(_:receiverIndex:counter:key:padding:mtu:)`` needs: the data header.
    public static let headroom = Spec.dataHeaderSize
    /// Bytes of tailroom sealing may need: up to 15 padding bytes plus the 16-byte tag.
    public static let tailroom = (Spec.paddingMultiple - 1) + Spec.tagSize

    /// The outcome of ``open(_:key:replay:)``.
    public enum OpenResult: Equatable, Sendable {
        /// Authenticated and decrypted; the buffer now holds the (padded) plaintext, empty for a keepalive.
        case ok(counter: UInt64)
        /// Refused; the buffer's contents are unspecified and the replay window is unchanged.
        case drop(DropReason)
    }

    /// The plaintext length after padding a `length`-byte packet: rounded up to a multiple of 16,
    /// but never beyond `mtu` (and never shorter than `length`), as WireGuard pads (whitepaper 5.4.6).
    @inlinable
    public static func paddedLength(_ length: Int, mtu: Int) -> Int {
        let rounded = (length + Spec.paddingMultiple - 1) & ~(Spec.paddingMultiple - 1)
        return max(length, min(rounded, mtu))
    }

    /// The size on the wire of a data message carrying a `length`-byte packet.
    @inlinable
    public static func messageSize(forPacketLength length: Int, padding: Bool = true, mtu: Int) -> Int {
        Spec.dataHeaderSize + (padding ? paddedLength(length, mtu: mtu) : length) + Spec.tagSize
    }

    /// Turns the plaintext packet in `packet` into a complete transport data message, in place.
    ///
    /// Pads the plaintext with zeros (in the tailroom) to ``paddedLength(_:mtu:)``, encrypts it in
    /// place, appends the tag into the tailroom and prepends the header into the headroom. An empty
    /// `packet` becomes a 32-byte keepalive.
    ///
    /// - Parameters:
    ///   - packet: the plaintext; needs ``headroom`` in front and padding + 16 bytes of tailroom
    ///     (``tailroom`` always suffices). Missing room is a programmer error and traps.
    ///   - receiverIndex: the peer's index for this session (its sender index from the handshake).
    ///   - counter: the sending counter; never reuse one under the same key.
    ///   - key: the session's sending key.
    ///   - padding: whether to pad to a multiple of 16 (WireGuard always does).
    ///   - mtu: the tunnel MTU; padding never takes the plaintext past it.
    @inlinable
    public static func seal(
        _ packet: inout PacketBuffer, receiverIndex: UInt32, counter: UInt64, key: SecretKey,
        padding: Bool = true, mtu: Int
    ) {
        seal(&packet, receiverIndex: receiverIndex, counter: counter, key: TransportKey(key), padding: padding, mtu: mtu)
    }

    /// ``seal(_:receiverIndex:counter:key:padding:mtu:)`` with the session's cipher: the same
    /// message layout, the body sealed with ChaCha20-Poly1305 or AES-256-GCM as `key` says.
    @inlinable
    public static func seal(
        _ packet: inout PacketBuffer, receiverIndex: UInt32, counter: UInt64, key: TransportKey,
        padding: Bool = true, mtu: Int
    ) {
        let (body, tag) = layOut(&packet, receiverIndex: receiverIndex, counter: counter, padding: padding, mtu: mtu)
        key.seal(body, tag: tag, counter: counter)
    }

    /// ``seal(_:receiverIndex:counter:key:padding:mtu:)`` without the encryption: pads, makes room
    /// for the tag and writes the header, and returns where the body and the tag lie, for
    /// `key.seal(body, tag:, counter:)` later (on another thread: ``CryptoBatch``). Until then
    /// the message holds the plaintext and must not be sent.
    @inlinable
    public static func layOut(
        _ packet: inout PacketBuffer, receiverIndex: UInt32, counter: UInt64, padding: Bool = true, mtu: Int
    ) -> (body: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer) {
        let padCount = padding ? paddedLength(packet.count, mtu: mtu) - packet.count : 0
        precondition(packet.headroom >= headroom, "TransportData.seal needs 16 bytes of PacketBuffer headroom")
        precondition(packet.tailroom >= padCount + Spec.tagSize,
                     "TransportData.seal needs padding + 16 bytes of PacketBuffer tailroom")
        if padCount > 0 {
            let pad = packet.append(padCount)
            pad.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: padCount)
        }
        let body = packet.bytes
        let tag = packet.append(Spec.tagSize)
        let header = packet.prepend(Spec.dataHeaderSize)
        header.storeLE32(MessageType.transportData.prefix, at: 0)
        header.storeLE32(receiverIndex, at: 4)
        header.storeLE64(counter, at: 8)
        return (body, tag.baseAddress!)
    }

    /// What ``checkOpen(_:key:replay:)`` found: a message ready for its tag to be verified, or
    /// the reason to drop it.
    public enum OpenCheck: Equatable, Sendable {
        case ready(counter: UInt64, bodyCount: Int)
        case drop(DropReason)
    }

    /// The checks ``open(_:key:replay:)`` makes before decrypting (framing, the cipher's counter
    /// limit, the replay window), changing nothing (`replay` is inout only so that its 1 KiB is
    /// never copied). After `key.open` of the body at
    /// ``dataHeaderSize`` succeeded, ``finishOpen(_:counter:bodyCount:replay:)`` marks the counter.
    @inlinable
    public static func checkOpen(_ datagram: PacketBuffer, key: TransportKey, replay: inout ReplayWindow) -> OpenCheck {
        let message = UnsafeRawBufferPointer(datagram.bytes)
        let counter: UInt64
        switch Wire.classify(message) {
        case .data(_, let c): counter = c
        case .invalid(let reason): return .drop(reason)
        case .initiation, .response, .cookieReply, .probe: return .drop(.unknownType)
        }
        guard counter < key.cipher.rejectAfterMessages else { return .drop(.counterLimit) }
        guard replay.wouldAccept(counter) else { return .drop(.replayed) }
        return .ready(counter: counter, bodyCount: message.count - Spec.dataHeaderSize - Spec.tagSize)
    }

    /// The end of an open whose tag verified: marks `counter` in `replay` (a duplicate within one
    /// batch is refused here) and leaves only the plaintext in `datagram`.
    @inlinable
    public static func finishOpen(
        _ datagram: inout PacketBuffer, counter: UInt64, bodyCount: Int, replay: inout ReplayWindow
    ) -> OpenResult {
        guard replay.accept(counter) else { return .drop(.replayed) }
        datagram.removeFirst(Spec.dataHeaderSize)
        datagram.truncate(to: bodyCount)
        return .ok(counter: counter)
    }

    /// Where the body of a data message of `bodyCount` bytes starts in `datagram`, and its tag.
    @inlinable
    public static func bodyAndTag(
        of datagram: PacketBuffer, bodyCount: Int
    ) -> (body: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer) {
        let base = datagram.bytes.baseAddress!
        return (UnsafeMutableRawBufferPointer(start: base + Spec.dataHeaderSize, count: bodyCount),
                base + Spec.dataHeaderSize + bodyCount)
    }

    /// Authenticates and decrypts the transport data message in `datagram`, in place.
    ///
    /// Order of checks: the framing (as ``Wire/classify(_:)``); the counter limit
    /// (`counterLimit`); the replay window, before any decryption (`replayed`); the tag
    /// (`authenticationFailed`); only then is the counter marked in `replay`, which refuses a
    /// duplicate (`replayed`). The receiver index is not checked: the caller chose `key` by it.
    ///
    /// - Parameters:
    ///   - datagram: one whole received message; on success it holds only the decrypted, still
    ///     padded plaintext (header and tag removed), empty for a keepalive.
    ///   - key: the receiving key of the session the receiver index names.
    ///   - replay: that session's replay window; changed only on success.
    /// - Returns: `.ok(counter:)` or `.drop(reason)`.
    @inlinable
    public static func open(_ datagram: inout PacketBuffer, key: SecretKey, replay: inout ReplayWindow) -> OpenResult {
        open(&datagram, key: TransportKey(key), replay: &replay)
    }

    /// ``open(_:key:replay:)`` with the session's cipher; a counter at or past the cipher's
    /// message limit (``TransportCipher/rejectAfterMessages``) is refused as `counterLimit`.
    @inlinable
    public static func open(_ datagram: inout PacketBuffer, key: TransportKey, replay: inout ReplayWindow) -> OpenResult {
        switch checkOpen(datagram, key: key, replay: &replay) {
        case .drop(let reason):
            return .drop(reason)
        case .ready(let counter, let bodyCount):
            let (body, tag) = bodyAndTag(of: datagram, bodyCount: bodyCount)
            guard key.open(body, tag: tag, counter: counter) else { return .drop(.authenticationFailed) }
            return finishOpen(&datagram, counter: counter, bodyCount: bodyCount, replay: &replay)
        }
    }
}
