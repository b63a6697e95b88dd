// SPDX-License-Identifier: MIT
import VPNBasics

/// The outcome of ``TCPDeframer/nextFrame()``.
public enum DeframeResult {
    /// One complete message (without its length prefix). The bytes stay valid until the next call
    /// to any mutating member of the deframer.
    case frame(UnsafeRawBufferPointer)
    /// No complete frame is buffered; read more from the stream.
    case needMoreData
    /// The stream is corrupt (a length of zero or over the maximum): close the connection.
    case invalid(DropReason)
}

/// Splits vpnd's TCP byte stream into messages, each preceded by its 2-byte big-endian length.
///
/// The deframer owns one buffer, allocated once at init. The reader fills ``writableSpace``
/// directly (one `read` per call, no copy) and reports the count with ``didWrite(_:)``, then
/// drains ``nextFrame()`` until it returns ``DeframeResult/needMoreData``. Unread bytes are moved
/// to the front of the buffer when the space behind them could not hold a largest frame.
///
/// Not thread-safe; owned by the thread that reads the connection.
public struct TCPDeframer: ~Copyable {
    /// The size of the buffer in bytes.
    public let capacity: Int
    /// The largest frame length accepted; a larger one makes the stream invalid.
    public let maximumFrameLength: Int

    @usableFromInline let storage: UnsafeMutableRawPointer
    /// Offset of the first unread byte.
    @usableFromInline var readOffset = 0
    /// Offset one past the last buffered byte.
    @usableFromInline var writeOffset = 0
    @usableFromInline var failure: DropReason?

    /// A deframer with a `capacity`-byte buffer, refusing frames longer than `maximumFrameLength`.
    ///
    /// `capacity` must hold one largest frame with its prefix, `maximumFrameLength` must be
    /// 1 to 65535 (the prefix has 16 bits); anything else is a programmer error and traps.
    public init(capacity: Int = Tuning.tcpReceiveBufferSize, maximumFrameLength: Int = Spec.maximumTCPFrameLength) {
        precondition(maximumFrameLength >= 1 && maximumFrameLength <= Spec.maximumTCPFrameLength,
                     "TCPDeframer maximumFrameLength must be 1...65535")
        precondition(capacity >= Spec.tcpLengthPrefixSize + maximumFrameLength,
                     "TCPDeframer capacity must hold a largest frame and its 2-byte prefix")
        self.capacity = capacity
        self.maximumFrameLength = maximumFrameLength
        storage = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    /// Bytes buffered and not yet returned as frames.
    @inlinable
    public var bufferedByteCount: Int { writeOffset - readOffset }

    /// True once the stream was found corrupt; stays true until ``reset()``.
    @inlinable
    public var isInvalid: Bool { failure != nil }

    /// Free space to read stream bytes into; report how many were written with ``didWrite(_:)``.
    ///
    /// Accessing it may move unread bytes to the front, invalidating the last returned frame.
    /// Empty only when complete frames are waiting: drain ``nextFrame()`` first.
    @inlinable
    public var writableSpace: UnsafeMutableRawBufferPointer {
        mutating get {
            compactIfNeeded()
            return UnsafeMutableRawBufferPointer(start: storage + writeOffset, count: capacity - writeOffset)
        }
    }

    /// Records that `count` bytes were written at the start of ``writableSpace``.
    @inlinable
    public mutating func didWrite(_ count: Int) {
        precondition(count >= 0 && count <= capacity - writeOffset, "TCPDeframer.didWrite past its writable space")
        writeOffset += count
    }

    /// Copies as much of `bytes` as fits into the buffer; returns how many bytes were taken.
    ///
    /// The copying alternative to ``writableSpace`` (tests, or a reader that owns its own buffer).
    @inlinable
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let space = writableSpace
        let taken = min(space.count, bytes.count)
        if taken > 0 { space.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: taken) }
        writeOffset += taken
        return taken
    }

    /// The next complete frame, or why there is none.
    ///
    /// After ``DeframeResult/invalid(_:)`` every call returns it again until ``reset()``.
    @inlinable
    public mutating func nextFrame() -> DeframeResult {
        if let failure { return .invalid(failure) }
        let available = writeOffset - readOffset
        guard available >= Spec.tcpLengthPrefixSize else { return .needMoreData }
        let length = Int(UnsafeRawPointer(storage).loadBE16(at: readOffset))
        guard length >= 1 && length <= maximumFrameLength else {
            failure = .badFrameLength
            return .invalid(.badFrameLength)
        }
        guard available >= Spec.tcpLengthPrefixSize + length else { return .needMoreData }
        let start = readOffset + Spec.tcpLengthPrefixSize
        readOffset = start + length
        return .frame(UnsafeRawBufferPointer(start: storage + start, count: length))
    }

    /// Empties the buffer and clears an invalid state, for a new connection.
    @inlinable
    public mutating func reset() {
        readOffset = 0
        writeOffset = 0
        failure = nil
    }

    @inlinable
    mutating func compactIfNeeded() {
        if readOffset == writeOffset {
            readOffset = 0
            writeOffset = 0
        } else if readOffset > 0 && capacity - readOffset < Spec.tcpLengthPrefixSize + maximumFrameLength {
            let unread = writeOffset - readOffset
            storage.copyMemory(from: storage + readOffset, byteCount: unread)  // memmove: overlap is fine
            readOffset = 0
            writeOffset = unread
        }
    }
}

/// The send side of vpnd's TCP framing: a 2-byte big-endian length before each message.
public enum TCPFramer {
    /// Bytes of the length prefix.
    public static let headerSize = Spec.tcpLengthPrefixSize

    /// Writes the 2-byte big-endian prefix for a `length`-byte message at `destination`.
    ///
    /// `length` must be 1 to 65535; anything else is a programmer error and traps.
    @inlinable
    public static func writeHeader(length: Int, to destination: UnsafeMutableRawPointer) {
        precondition(length >= 1 && length <= Spec.maximumTCPFrameLength, "TCP frame length must be 1...65535")
        destination.storeBE16(UInt16(length), at: 0)
    }
}
