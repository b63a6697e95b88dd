// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// One TCP connection of the TCP transport: the stream, its deframer and a bounded send queue.
///
/// Not thread-safe; owned by the data-plane thread.
final class StreamLink {
    let connection: any StreamConnection
    let remote: Endpoint
    let token: UInt64
    var deframer: TCPDeframer
    /// Bytes accepted for sending but not yet taken by the socket; bounded: when full, further
    /// messages are dropped rather than queued (the inner TCP recovers, memory does not grow).
    private let sendQueue: UnsafeMutableRawBufferPointer
    private var queuedStart = 0
    private var queuedEnd = 0
    var connecting: Bool
    var watchingWritable = false
    var droppedMessages: UInt64 = 0

    init(connection: any StreamConnection, token: UInt64, maxFrame: Int, connecting: Bool, sendQueueSize: Int = 1 << 20) {
        self.connection = connection
        remote = connection.remoteEndpoint
        self.token = token
        self.connecting = connecting
        deframer = TCPDeframer(capacity: 2 * (maxFrame + TCPFramer.headerSize), maximumFrameLength: maxFrame)
        sendQueue = .allocate(byteCount: sendQueueSize, alignment: 16)
    }

    deinit { sendQueue.deallocate() }

    var hasQueuedBytes: Bool { queuedEnd > queuedStart }

    /// Sends one framed message: straight to the socket when nothing waits, else behind the
    /// queue. Returns false when the message had to be dropped (queue full).
    func send(_ message: UnsafeRawBufferPointer) throws(IOError) -> Bool {
        var offset = 0
        if !hasQueuedBytes && !connecting {
            offset = try connection.write(message)
            if offset == message.count { return true }
        }
        let rest = message.count - offset
        if queuedEnd + rest > sendQueue.count {
            // Compact, then give up if it still does not fit.
            let pending = queuedEnd - queuedStart
            if pending > 0 && queuedStart > 0 {
                sendQueue.baseAddress!.copyMemory(from: sendQueue.baseAddress! + queuedStart, byteCount: pending)
            }
            queuedStart = 0
            queuedEnd = pending
            if queuedEnd + rest > sendQueue.count {
                if offset > 0 {
                    // Part of the message is on the wire: the stream would be corrupt without the rest.
                    throw IOError(operation: "send", subject: "\(remote)", errno: 0, reason: "send queue overflow mid-message")
                }
                droppedMessages &+= 1
                return false
            }
        }
        (sendQueue.baseAddress! + queuedEnd).copyMemory(from: message.baseAddress! + offset, byteCount: rest)
        queuedEnd += rest
        return true
    }

    /// Writes queued bytes until the socket would block. Returns true when the queue is empty.
    func flush() throws(IOError) -> Bool {
        while hasQueuedBytes {
            let written = try connection.write(
                UnsafeRawBufferPointer(start: sendQueue.baseAddress! + queuedStart, count: queuedEnd - queuedStart))
            if written == 0 { return false }
            queuedStart += written
        }
        queuedStart = 0
        queuedEnd = 0
        return true
    }

    /// Reads what the socket has and hands every complete message to `deliver` via `scratch`.
    /// Returns false when the connection ended or sent something invalid (close it).
    func receive(into scratch: inout PacketBuffer, from: Endpoint, deliver: (inout PacketBuffer, Endpoint) -> Void)
        throws(IOError) -> Bool
    {
        for _ in 0..<16 {
            let space = deframer.writableSpace
            guard space.count > 0 else { return false }
            guard let count = try connection.read(into: space) else { return true }
            if count == 0 { return false }
            deframer.didWrite(count)
            while true {
                switch deframer.nextFrame() {
                case .frame(let bytes):
                    // Over a stream there is no excuse for a malformed message: close.
                    if case .invalid = Wire.classify(bytes) { return false }
                    scratch.reset(headroom: 0)
                    guard bytes.count <= scratch.tailroom else { return false }
                    scratch.append(contentsOf: bytes)
                    deliver(&scratch, from)
                    continue
                case .needMoreData:
                    break
                case .invalid:
                    return false
                }
                break
            }
        }
        return true
    }
}

@available(*, unavailable)
extension StreamLink: Sendable {}
