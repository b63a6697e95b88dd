// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import Synchronization
import SystemPackage
import VPNBasics

/// A small TCP server on its own thread for one-request-per-connection exchanges (vpnd's
/// `MetricsListen` HTTP endpoint): it reads a request, hands the bytes so far to a handler
/// until the handler answers, writes the answer and closes. It only moves bytes; the handler
/// interprets them.
///
/// Bounded so that no client can stall it or the daemon: at most ``Limits/maximumConnections``
/// at once (a new one beyond that closes the one that has waited longest for its request, or is
/// closed at once when every slot is writing an answer); at most
/// ``Limits/maximumRequestBytes`` + 1 bytes read per request; ``Limits/requestTimeout`` for the
/// request to arrive (then the connection is closed without an answer) and
/// ``Limits/responseTimeout`` for the client to take the answer. All sockets are non-blocking and
/// one `poll(2)` loop serves them, so a slow client costs a slot, never the thread.
///
/// Thread-safe: the listening descriptor is bound in ``init(bindingTo:backlog:)`` (before a
/// privilege drop), the thread owns every connection, ``stop()`` rings an eventfd.
public final class TCPRequestServer: Sendable {
    /// The bounds of the server.
    public struct Limits: Sendable {
        /// Connections served at once.
        public var maximumConnections: Int
        /// The request size the handler decides on; the server reads one byte more at most, so
        /// the handler can tell "too large" from "exactly the limit".
        public var maximumRequestBytes: Int
        /// Time from accept for the request to be complete.
        public var requestTimeout: Duration
        /// Time for the client to take the answer.
        public var responseTimeout: Duration

        public init(
            maximumConnections: Int = 8, maximumRequestBytes: Int = 4096, requestTimeout: Duration = .seconds(2),
            responseTimeout: Duration = .seconds(2)
        ) {
            self.maximumConnections = maximumConnections
            self.maximumRequestBytes = maximumRequestBytes
            self.requestTimeout = requestTimeout
            self.responseTimeout = responseTimeout
        }
    }

    /// Decides on a request: the bytes received so far (at most `maximumRequestBytes` + 1) and
    /// whether the client has finished sending (end of stream); returns the answer to write, or
    /// nil to wait for more (with `ended`, or at the size bound, nil closes without an answer).
    public typealias Handler = @Sendable (_ request: [UInt8], _ ended: Bool) -> [UInt8]?

    /// The bound address (with the port the kernel picked when asked for port 0).
    public let localEndpoint: Endpoint
    private let listener: Atomic<Int32>
    private let wakeup: EventFDWakeup
    private let stopping = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let stopped = Semaphore()

    /// Binds and listens on `endpoint` (`[::]` is dual-stack). `inUseHint` is the hint when the
    /// port is in use.
    ///
    /// - Throws: ``IOError``, e.g. "bind 127.0.0.1:9586: address already in use (EADDRINUSE); ...".
    public init(bindingTo endpoint: Endpoint, backlog: Int32 = 16, inUseHint: String) throws(IOError) {
        let fd = try TCPListener.listeningSocket(bindingTo: endpoint, backlog: backlog, inUseHint: inUseHint)
        do throws(IOError) {
            wakeup = try EventFDWakeup()
        } catch {
            Syscall.close(fd)
            throw error
        }
        listener = Atomic(fd)
        localEndpoint = VPNLinux.localEndpoint(of: fd)
    }

    deinit { Syscall.close(listener.exchange(-1, ordering: .acquiringAndReleasing)) }

    /// Serves on a thread named `threadName` with `limits`, answering with `handler` (called on
    /// that thread, one request at a time). False when no thread could be started.
    public func start(threadName: String, limits: Limits = Limits(), handler: @escaping Handler) -> Bool {
        precondition(limits.maximumConnections > 0 && limits.maximumRequestBytes > 0, "TCPRequestServer: empty limits")
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        let ok = startThread(name: threadName) { [self] in
            serve(limits: limits, handler: handler)
            stopped.signal()
        }
        if !ok { started.store(false, ordering: .releasing) }
        return ok
    }

    /// Stops serving: the thread closes its connections and returns (waited for up to 2 s), and
    /// the listening socket is closed.
    public func stop() {
        stopping.store(true, ordering: .releasing)
        if started.load(ordering: .acquiring) {
            wakeup.signal()
            _ = stopped.wait(seconds: 2)
        }
        Syscall.close(listener.exchange(-1, ordering: .acquiringAndReleasing))
    }

    private enum Phase { case reading, writing, draining }

    private struct Connection {
        var fd: Int32
        var phase: Phase = .reading
        var accepted: Instant
        var deadline: Instant
        var received: [UInt8] = []
        var answer: [UInt8] = []
        var written = 0
        var drained = 0
    }

    /// What a lingering close reads at most after the answer (so the kernel does not reset the
    /// connection over unread request bytes, which could destroy the answer in flight).
    private static let drainLimit = 65536
    private static let drainTime: Duration = .seconds(1)

    private func serve(limits: Limits, handler: Handler) {
        let fd = listener.load(ordering: .acquiring)
        let clock = BootClock()
        var connections: [Connection] = []
        var scratch = [UInt8](repeating: 0, count: 4096)
        var polls: [pollfd] = []
        // Out of descriptors: the listener stays readable, so it is left out of the poll a while
        // (else the loop would spin on it).
        var acceptPausedUntil: Instant?
        defer { for connection in connections { Syscall.close(connection.fd) } }

        func close(_ index: Int) {
            Syscall.close(connections[index].fd)
            connections[index].fd = -1
        }

        func answer(_ index: Int, _ bytes: [UInt8], now: Instant) {
            connections[index].phase = .writing
            connections[index].answer = bytes
            connections[index].deadline = now + limits.responseTimeout
            write(index, now: now)
        }

        func write(_ index: Int, now: Instant) {
            let connection = connections[index]
            let remaining = connection.answer.count - connection.written
            if remaining > 0 {
                let sent = connection.answer.withUnsafeBytes { bytes in
                    Syscall.retrying {
                        send(connection.fd, bytes.baseAddress! + connection.written, remaining,
                             Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
                    }
                }
                switch sent {
                case .success(let n): connections[index].written += n
                case .failure(let errno):
                    if !Syscall.wouldBlock(errno) { close(index) }
                    return
                }
            }
            if connections[index].written == connection.answer.count {
                // Lingering close: no more from us; read what the client still sends, briefly.
                _ = Glibc.shutdown(connection.fd, Int32(SHUT_WR))
                connections[index].phase = .draining
                connections[index].answer = []
                connections[index].deadline = min(connection.deadline, now + Self.drainTime)
            }
        }

        func read(_ index: Int, now: Instant) {
            let connection = connections[index]
            let room = connection.phase == .reading
                ? limits.maximumRequestBytes + 1 - connection.received.count : scratch.count
            let got = scratch.withUnsafeMutableBytes { buffer in
                Syscall.retrying { recv(connection.fd, buffer.baseAddress, min(room, buffer.count), Int32(MSG_DONTWAIT)) }
            }
            let count: Int
            switch got {
            case .success(let n): count = n
            case .failure(let errno):
                if !Syscall.wouldBlock(errno) { close(index) }
                return
            }
            if connection.phase == .draining {
                connections[index].drained += count
                if count == 0 || connections[index].drained > Self.drainLimit { close(index) }
                return
            }
            if count > 0 { connections[index].received += scratch[0..<count] }
            let ended = count == 0
            if let reply = handler(connections[index].received, ended) {
                answer(index, reply, now: clock.now())  // the handler may have taken a while
            } else if ended || connections[index].received.count > limits.maximumRequestBytes {
                close(index)
            }
        }

        func accept(now: Instant) {
            while true {
                var storage = sockaddr_storage()
                let client = vpnd_accept(fd, &storage)
                if client < 0 {
                    let errno = Errno(rawValue: -client)
                    if errno.rawValue == ECONNABORTED || errno.rawValue == EPROTO { continue }
                    if !Syscall.wouldBlock(errno) { acceptPausedUntil = now + .milliseconds(100) }
                    return  // would block; or out of descriptors, retried after the pause
                }
                if connections.count >= limits.maximumConnections {
                    // Full: the connection that has waited longest for its request makes room.
                    let waiting = connections.indices.filter { connections[$0].phase == .reading }
                    guard let oldest = waiting.min(by: { connections[$0].accepted < connections[$1].accepted }) else {
                        Syscall.close(client)
                        continue
                    }
                    Syscall.close(connections[oldest].fd)
                    connections.remove(at: oldest)
                }
                connections.append(Connection(fd: client, accepted: now, deadline: now + limits.requestTimeout))
            }
        }

        while !stopping.load(ordering: .acquiring) {
            let now = clock.now()
            for i in connections.indices where connections[i].deadline <= now { close(i) }
            connections.removeAll { $0.fd < 0 }
            polls.removeAll(keepingCapacity: true)
            polls.append(pollfd(fd: wakeup.pollHandle.rawValue, events: Int16(POLLIN), revents: 0))
            if let until = acceptPausedUntil, until <= now { acceptPausedUntil = nil }
            polls.append(pollfd(fd: acceptPausedUntil == nil ? fd : -1, events: Int16(POLLIN), revents: 0))
            for connection in connections {
                let events = connection.phase == .writing ? POLLOUT : POLLIN
                polls.append(pollfd(fd: connection.fd, events: Int16(events), revents: 0))
            }
            var timeout: Int32 = -1
            if let next = (connections.map(\.deadline) + [acceptPausedUntil].compactMap { $0 }).min() {
                let nanoseconds = next.nanoseconds > now.nanoseconds ? next.nanoseconds - now.nanoseconds : 0
                timeout = Int32(min(1000, (nanoseconds + 999_999) / 1_000_000))
            }
            let ready = polls.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if ready == 0 { continue }
            let after = clock.now()
            if polls[0].revents != 0 { wakeup.drain() }
            // Connections first (the indices of `polls` match them); new ones after.
            for (offset, entry) in polls.dropFirst(2).enumerated() where entry.revents != 0 {
                guard connections[offset].fd >= 0 else { continue }
                switch connections[offset].phase {
                case .writing:
                    if entry.revents & Int16(POLLOUT) != 0 {
                        write(offset, now: after)
                    } else {
                        close(offset)  // error or hang-up before the answer went out
                    }
                case .reading, .draining:
                    read(offset, now: after)
                }
            }
            connections.removeAll { $0.fd < 0 }
            if polls[1].revents != 0 { accept(now: after) }
        }
    }
}
