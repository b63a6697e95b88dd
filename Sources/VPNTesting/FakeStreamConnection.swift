// SPDX-License-Identifier: MIT
import VPNBasics

/// One end of an in-memory stream connection, made by a ``FakeStreamDialer`` (client end) or
/// accepted from a ``FakeStreamListener`` (server end).
///
/// Non-blocking like a socket: `read` returns nil when nothing waits, `write` takes at most
/// ``writeChunk`` bytes and 0 when the pipe is full. ``close()`` gives the other end end-of-stream;
/// ``reset()`` breaks both ends (ECONNRESET), as a lost connection does.
///
/// Not thread-safe; owned by one test thread or data-plane thread.
public final class FakeStreamConnection: StreamConnection, FakePollable {
    /// Where the connection is in its life.
    public enum State: Sendable, Equatable {
        /// A dialled connection not yet accepted (``FakeStreamDialer/holdConnects``).
        case connecting
        case connected
        /// The connect failed; ``finishConnecting()`` throws ECONNREFUSED.
        case refused
        /// Closed by ``close()``; every further call fails.
        case closed
    }

    public let localEndpoint: Endpoint
    public let remoteEndpoint: Endpoint
    public let pollHandle: PollHandle
    public private(set) var state: State
    /// The most bytes one `write` takes.
    public var writeChunk: Int
    /// The most bytes one `read` returns.
    public var readChunk: Int
    /// Bytes taken by `write` / returned by `read` so far.
    public private(set) var bytesWritten = 0
    public private(set) var bytesRead = 0
    /// Writes that took fewer bytes than offered (0 included).
    public private(set) var shortWrites = 0

    let inbound: FakeStreamPipe
    let outbound: FakeStreamPipe
    /// The listener to hand the other end to when a held connect completes.
    var pendingAccept: (listener: FakeStreamListener, serverEnd: FakeStreamConnection)?

    init(
        local: Endpoint, remote: Endpoint, inbound: FakeStreamPipe, outbound: FakeStreamPipe, state: State,
        writeChunk: Int, readChunk: Int
    ) {
        localEndpoint = local
        remoteEndpoint = remote
        self.inbound = inbound
        self.outbound = outbound
        self.state = state
        self.writeChunk = writeChunk
        self.readChunk = readChunk
        pollHandle = FakeHandleTable.allocate()
        FakeHandleTable.attach(self)
    }

    deinit { FakeHandleTable.detach(pollHandle) }

    /// Two connected ends joined by pipes of `capacity` bytes each way.
    static func pair(
        client: Endpoint, server: Endpoint, capacity: Int, writeChunk: Int, readChunk: Int, clientState: State
    ) -> (client: FakeStreamConnection, server: FakeStreamConnection) {
        let up = FakeStreamPipe(capacity: capacity)
        let down = FakeStreamPipe(capacity: capacity)
        let c = FakeStreamConnection(
            local: client, remote: server, inbound: down, outbound: up, state: clientState, writeChunk: writeChunk,
            readChunk: readChunk)
        let s = FakeStreamConnection(
            local: server, remote: client, inbound: up, outbound: down, state: .connected, writeChunk: writeChunk,
            readChunk: readChunk)
        return (c, s)
    }

    /// A dialled connection whose connect failed.
    static func refused(local: Endpoint, remote: Endpoint) -> FakeStreamConnection {
        FakeStreamConnection(
            local: local, remote: remote, inbound: FakeStreamPipe(capacity: 0), outbound: FakeStreamPipe(capacity: 0),
            state: .refused, writeChunk: 0, readChunk: 0)
    }

    /// True once ``close()`` was called.
    public var isClosed: Bool { state == .closed }
    /// Bytes the other end wrote that this end has not read.
    public var unreadByteCount: Int { inbound.available }
    /// True when the other end closed its side (end of stream after the unread bytes).
    public var peerClosed: Bool { inbound.writerClosed }

    private func failure(_ operation: String, _ errno: Int32, _ reason: String) -> IOError {
        IOError(operation: operation, subject: "\(remoteEndpoint)", errno: errno, reason: reason)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> Int? {
        switch state {
        case .closed: throw failure("read", 9, "closed (EBADF)")
        case .refused: throw failure("read", 111, "connection refused (ECONNREFUSED)")
        case .connecting: return nil
        case .connected: break
        }
        if inbound.broken { throw failure("read", 104, "connection reset by peer (ECONNRESET)") }
        let n = min(buffer.count, readChunk, inbound.available)
        if n > 0 {
            inbound.take(into: buffer, count: n)
            bytesRead += n
            return n
        }
        if inbound.writerClosed { return 0 }
        return nil
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int {
        switch state {
        case .closed: throw failure("write", 9, "closed (EBADF)")
        case .refused: throw failure("write", 111, "connection refused (ECONNREFUSED)")
        case .connecting: return 0
        case .connected: break
        }
        if outbound.broken { throw failure("write", 104, "connection reset by peer (ECONNRESET)") }
        if outbound.readerClosed { throw failure("write", 32, "broken pipe (EPIPE)") }
        let n = min(bytes.count, writeChunk, outbound.space)
        if n < bytes.count { shortWrites += 1 }
        if n > 0 {
            outbound.append(UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
            bytesWritten += n
        }
        return n
    }

    public func close() {
        guard state != .closed else { return }
        state = .closed
        outbound.writerClosed = true
        inbound.readerClosed = true
        pendingAccept = nil
    }

    public func finishConnecting() throws(IOError) -> Bool {
        switch state {
        case .connecting: return false
        case .connected: return true
        case .refused: throw failure("connect", 111, "connection refused (ECONNREFUSED)")
        case .closed: throw failure("connect", 9, "closed (EBADF)")
        }
    }

    /// Breaks the connection at both ends, as a reset or a dead path does: every further read or
    /// write at either end fails with ECONNRESET.
    public func reset() {
        inbound.broken = true
        outbound.broken = true
    }

    /// Completes a held connect: the server end is queued at the listener.
    public func completeConnect() {
        guard state == .connecting else { return }
        if let pending = pendingAccept {
            state = .connected
            pending.listener.enqueue(pending.serverEnd)
        } else {
            state = .refused
        }
        pendingAccept = nil
    }

    public var readiness: PollEvents {
        switch state {
        case .closed, .connecting: return []
        case .refused: return [.writable, .hangup]
        case .connected: break
        }
        var ready: PollEvents = []
        if inbound.available > 0 || inbound.writerClosed || inbound.broken { ready.insert(.readable) }
        if outbound.space > 0 || outbound.readerClosed || outbound.broken { ready.insert(.writable) }
        if inbound.broken || (inbound.writerClosed && outbound.readerClosed) { ready.insert(.hangup) }
        return ready
    }
}

@available(*, unavailable)
extension FakeStreamConnection: Sendable {}
