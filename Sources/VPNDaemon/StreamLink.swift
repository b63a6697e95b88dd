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
    /// When the connection was accepted or dialled.
    var openedAt: Instant = .zero
    /// True once the connection delivered an authenticated message (see ``Transport/handle``):
    /// from then on a server never evicts it for a newcomer.
    var authenticated = false
    /// The server's list of unauthenticated connections in accept order (intrusive, so that
    /// admission, eviction and expiry cost O(1)): set only while on the list. The newer link is
    /// held strongly (the server holds the oldest), the older one weakly, so no cycle outlives it.
    weak var olderUnauthenticated: StreamLink?
    var newerUnauthenticated: StreamLink?
    var onUnauthenticatedList = false
    var droppedMessages: UInt64 = 0

    init(connection: any StreamConnection, token: UInt64, maxFrame: Int, connecting: Bool, sendQueueSize: Int = 1 << 20) {
        self.connection = connection
        remote = connection.remoteEndpoint
        self.token = token
        self.connecting = connecting
        // Room for many messages per read(2): the stream is drained in large gulps.
        deframer = TCPDeframer(
            capacity: max(StreamLink.receiveBufferSize, 2 * (maxFrame + TCPFramer.headerSize)), maximumFrameLength: maxFrame)
        sendQueue = .allocate(byteCount: sendQueueSize, alignment: 16)
    }

    deinit { sendQueue.deallocate() }

    var hasQueuedBytes: Bool { queuedEnd > queuedStart }

    /// Bytes read from the stream per read(2), at most.
    static let receiveBufferSize = 256 * 1024

    /// Queues one framed message without writing it (the caller flushes once per batch, so a
    /// batch costs one write). Returns false when the queue is full and the message dropped.
    func enqueue(_ message: UnsafeRawBufferPointer) -> Bool {
        if queuedEnd + message.count > sendQueue.count {
            let pending = queuedEnd - queuedStart
            if pending > 0 && queuedStart > 0 {
                sendQueue.baseAddress!.copyMemory(from: sendQueue.baseAddress! + queuedStart, byteCount: pending)
            }
            queuedStart = 0
            queuedEnd = pending
            if queuedEnd + message.count > sendQueue.count {
                droppedMessages &+= 1
                return false
            }
        }
        (sendQueue.baseAddress! + queuedEnd).copyMemory(from: message.baseAddress!, byteCount: message.count)
        queuedEnd += message.count
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

    /// What reading the stream found.
    enum ReceiveOutcome {
        /// Still open.
        case open
        /// The peer closed the stream.
        case closed
        /// A bad length or a malformed message, for this reason: close this connection.
        case invalid(DropReason)
    }

    /// Reads what the socket has and hands every complete message to `deliver`, copied into the
    /// next buffer of `pool`; `endOfBatch` is called before a pool buffer is reused and after
    /// each read.
    func receive(
        into pool: UnsafeMutableBufferPointer<PacketBuffer>, from: Endpoint,
        deliver: (inout PacketBuffer, Endpoint) -> Void, endOfBatch: () -> Void
    ) throws(IOError) -> ReceiveOutcome {
        var used = 0
        defer { if used > 0 { endOfBatch() } }
        for _ in 0..<16 {
            let space = deframer.writableSpace
            guard space.count > 0 else { return .invalid(.badFrameLength) }
            guard let count = try connection.read(into: space) else { return .open }
            if count == 0 { return .closed }
            deframer.didWrite(count)
            while true {
                switch deframer.nextFrame() {
                case .frame(let bytes):
                    // Over a stream there is no excuse for a malformed message: close.
                    if case .invalid(let reason) = Wire.classify(bytes) { return .invalid(reason) }
                    if used == pool.count {
                        endOfBatch()
                        used = 0
                    }
                    pool[used].reset(headroom: 0)
                    guard bytes.count <= pool[used].tailroom else { return .invalid(.oversized) }
                    pool[used].append(contentsOf: bytes)
                    deliver(&pool[used], from)
                    used += 1
                    continue
                case .needMoreData:
                    break
                case .invalid(let reason):
                    return .invalid(reason)
                }
                break
            }
            if used > 0 {
                endOfBatch()
                used = 0
            }
            if count < space.count { return .open }
        }
        return .open
    }
}

@available(*, unavailable)
extension StreamLink: Sendable {}
