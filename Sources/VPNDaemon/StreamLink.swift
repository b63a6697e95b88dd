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
    /// Reads left for the current readiness event, and whether the last one drained the socket.
    private var readsLeft = 0
    private var drained = false

    init(
        connection: any StreamConnection, token: UInt64, maxFrame: Int, connecting: Bool, carrier: Carrier = .udp,
        sendQueueSize: Int = 1 << 20
    ) {
        self.connection = connection
        remote = connection.remoteEndpoint.over(carrier)
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

    /// Queues `message` behind its 2-byte big-endian length (the TCP framing, so the sender needs
    /// no headroom for it), without writing it: the caller flushes once per batch, so a batch
    /// costs one write. Returns false when the queue is full and the message dropped.
    func enqueueFramed(_ message: UnsafeRawBufferPointer) -> Bool {
        let total = TCPFramer.headerSize + message.count
        if queuedEnd + total > sendQueue.count {
            let pending = queuedEnd - queuedStart
            if pending > 0 && queuedStart > 0 {
                sendQueue.baseAddress!.copyMemory(from: sendQueue.baseAddress! + queuedStart, byteCount: pending)
            }
            queuedStart = 0
            queuedEnd = pending
            if queuedEnd + total > sendQueue.count { return false }
        }
        TCPFramer.writeHeader(length: message.count, to: sendQueue.baseAddress! + queuedEnd)
        queuedEnd += TCPFramer.headerSize
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
        /// The pool filled, or more reads may follow for this event: receive again.
        case more
        /// Still open; nothing more to read for this event.
        case open
        /// The peer closed the stream.
        case closed
        /// A bad frame length, for this reason: close this connection.
        case invalid(DropReason)
    }

    /// Bytes read per readiness event, at most this many reads: one busy connection cannot hold
    /// the loop.
    static let readsPerEvent = 16

    /// Starts the reads for one readiness event.
    func startReading() {
        readsLeft = Self.readsPerEvent
        drained = false
    }

    /// Copies complete frames into `pool` from the start, setting `count`: the frames already
    /// read first, then from one more read when none was left. The frames are not classified here
    /// (the tunnel does that once); only their lengths are checked.
    func receive(into pool: UnsafeMutableBufferPointer<PacketBuffer>, count: inout Int) throws(IOError) -> ReceiveOutcome {
        count = 0
        while true {
            while count < pool.count {
                switch deframer.nextFrame() {
                case .frame(let bytes):
                    pool[count].reset(headroom: 0)
                    guard bytes.count <= pool[count].tailroom else { return .invalid(.oversized) }
                    pool[count].append(contentsOf: bytes)
                    count += 1
                    continue
                case .needMoreData:
                    break
                case .invalid(let reason):
                    return .invalid(reason)
                }
                break
            }
            let mayRead = readsLeft > 0 && !drained
            // A full pool, or the frames of one read: hand them over before reading on.
            if count > 0 { return count == pool.count || mayRead ? .more : .open }
            guard mayRead else { return .open }
            let space = deframer.writableSpace
            guard space.count > 0 else { return .invalid(.badFrameLength) }
            guard let read = try connection.read(into: space) else { return .open }
            if read == 0 { return .closed }
            deframer.didWrite(read)
            readsLeft -= 1
            drained = read < space.count
        }
    }
}

@available(*, unavailable)
extension StreamLink: Sendable {}
