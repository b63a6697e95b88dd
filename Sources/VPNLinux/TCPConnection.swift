// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import Synchronization
import SystemPackage
import VPNBasics

/// A non-blocking TCP connection with `TCP_NODELAY`, accepted by a ``TCPListener`` or started by
/// ``connect(to:)``.
///
/// A connection started by ``connect(to:)`` may still be connecting: wait until the poller
/// reports it writable, then call ``finishConnecting()``. Thread-safe in the sense the kernel is:
/// the descriptor is held atomically and ``close()`` is idempotent; one thread reads, one writes.
public final class TCPConnection: StreamConnection, Sendable {
    private let descriptor: Atomic<Int32>
    private let connected: Atomic<Bool>
    /// The peer's address.
    public let remoteEndpoint: Endpoint
    /// The descriptor the connection was opened with (stays the same after ``close()``).
    public let pollHandle: PollHandle

    init(adopting fd: Int32, remote: Endpoint, connected: Bool) {
        descriptor = Atomic(fd)
        self.connected = Atomic(connected)
        remoteEndpoint = remote
        pollHandle = PollHandle(rawValue: fd)
        _ = Syscall.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    deinit { close() }

    /// Starts a non-blocking connect to `endpoint`; with a `firewallMark` other than 0 the socket
    /// carries that `SO_MARK` from before the connect, so its SYN is marked too.
    ///
    /// - Throws: ``IOError`` when the connect fails at once ("connect 10.0.0.1:51820: network is
    ///   unreachable (ENETUNREACH); ...").
    ///
    /// The corresponding C calls are `socket(SOCK_STREAM | SOCK_NONBLOCK)`, `setsockopt(SO_MARK)`
    /// and `connect(2)`.
    public static func connect(to endpoint: Endpoint, firewallMark: UInt32 = 0) throws(IOError) -> TCPConnection {
        let family = endpoint.socketFamily
        let fd: Int32
        switch Syscall.retrying({ socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("socket(TCP)", subject: endpoint.description, errno: errno)
        }
        if firewallMark != 0, case .failure(let errno) = markSocket(fd, firewallMark) {
            Syscall.close(fd)
            throw .system("setsockopt(SO_MARK)", subject: endpoint.description, errno: errno, hint: markHint(errno))
        }
        guard case (var address, let length)? = endpoint.sockaddr(family: family) else {
            Syscall.close(fd)
            throw .invalid("connect", subject: endpoint.description, reason: "unsupported address")
        }
        let rc = withSockaddrPointer(&address) { Glibc.connect(fd, $0, length) }
        if rc == 0 { return TCPConnection(adopting: fd, remote: endpoint, connected: true) }
        let code = Glibc.errno
        // EINTR: the connect goes on asynchronously, as EINPROGRESS.
        if code == EINPROGRESS || code == EINTR {
            return TCPConnection(adopting: fd, remote: endpoint, connected: false)
        }
        Syscall.close(fd)
        throw .system("connect", subject: endpoint.description, errno: Errno(rawValue: code), hint: connectHint(code))
    }

    /// Sets `SO_MARK` on `fd`.
    static func markSocket(_ fd: Int32, _ mark: UInt32) -> Result<Void, Errno> {
        Syscall.setOption(fd, SOL_SOCKET, SO_MARK, Int32(bitPattern: mark))
    }

    static func markHint(_ errno: Errno) -> String {
        errno.rawValue == EPERM ? "a socket mark (FwMark, or the full tunnel's) needs CAP_NET_ADMIN" : IOError.genericHint(errno)
    }

    /// The socket's `SO_MARK` (0 for none, or when it cannot be read).
    public var firewallMark: UInt32 {
        let fd = descriptor.load(ordering: .acquiring)
        guard fd >= 0, case .success(let value) = Syscall.getOption(fd, SOL_SOCKET, SO_MARK) else { return 0 }
        return UInt32(bitPattern: value)
    }

    static func connectHint(_ code: Int32) -> String {
        switch code {
        case ECONNREFUSED: return "nothing listens there: is the server running with Transport = tcp?"
        case ETIMEDOUT: return "no answer: check the address, the port and firewalls"
        case ENETUNREACH, EHOSTUNREACH: return "no route to the server"
        default: return IOError.genericHint(Errno(rawValue: code))
        }
    }

    /// True once the connection is established.
    public var isConnected: Bool { connected.load(ordering: .acquiring) }

    /// Completes a connect: returns true once connected, false while it is still in progress;
    /// throws when it failed. Call it when the poller reports the connection writable.
    ///
    /// The corresponding C calls are `poll(POLLOUT)` and `getsockopt(SO_ERROR)`.
    public func finishConnecting() throws(IOError) -> Bool {
        if connected.load(ordering: .acquiring) { return true }
        let fd = descriptor.load(ordering: .acquiring)
        guard fd >= 0 else { throw closedError("connect") }
        var probe = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        switch Syscall.retrying({ poll(&probe, 1, 0) }) {
        case .success(let n) where n == 0: return false
        case .success: break
        case .failure(let errno): throw .system("poll", subject: remoteEndpoint.description, errno: errno)
        }
        switch Syscall.getOption(fd, SOL_SOCKET, SO_ERROR) {
        case .success(0):
            connected.store(true, ordering: .releasing)
            return true
        case .success(let code):
            throw .system(
                "connect", subject: remoteEndpoint.description, errno: Errno(rawValue: code),
                hint: TCPConnection.connectHint(code))
        case .failure(let errno):
            throw .system("getsockopt(SO_ERROR)", subject: remoteEndpoint.description, errno: errno)
        }
    }

    /// Reads into `buffer`: the byte count, nil when nothing is ready, 0 at end of stream.
    ///
    /// The corresponding C call is `recv(2)`.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> Int? {
        let fd = descriptor.load(ordering: .acquiring)
        guard fd >= 0 else { throw closedError("read") }
        switch Syscall.retrying({ recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT)) }) {
        case .success(let n): return n
        case .failure(let errno):
            if Syscall.wouldBlock(errno) { return nil }
            throw .system("read", subject: remoteEndpoint.description, errno: errno)
        }
    }

    /// Writes from `bytes`: how many were taken, 0 when the socket would block. Never raises
    /// SIGPIPE (`MSG_NOSIGNAL`); a closed peer gives an error instead.
    ///
    /// The corresponding C call is `send(2)`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int {
        let fd = descriptor.load(ordering: .acquiring)
        guard fd >= 0 else { throw closedError("write") }
        if bytes.isEmpty { return 0 }
        let flags = Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)
        switch Syscall.retrying({ Glibc.send(fd, bytes.baseAddress, bytes.count, flags) }) {
        case .success(let n): return n
        case .failure(let errno):
            if Syscall.wouldBlock(errno) { return 0 }
            throw .system("write", subject: remoteEndpoint.description, errno: errno)
        }
    }

    /// Closes the connection; later calls do nothing, and reads and writes fail.
    public func close() {
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        Syscall.close(fd)
    }

    private func closedError(_ operation: String) -> IOError {
        .system(operation, subject: remoteEndpoint.description, errno: Errno(rawValue: EBADF), hint: "the connection was closed")
    }
}

/// Opens ``TCPConnection``s for the daemon through the ``StreamDialer`` seam, each marked with
/// `firewallMark` (0: none) before it connects.
public final class TCPDialer: StreamDialer, Sendable {
    /// The `SO_MARK` of every connection (0: none).
    public let firewallMark: UInt32

    public init(firewallMark: UInt32 = 0) { self.firewallMark = firewallMark }

    /// Starts a non-blocking connect; see ``TCPConnection/connect(to:firewallMark:)``.
    public func connect(to endpoint: Endpoint) throws(IOError) -> any StreamConnection {
        try TCPConnection.connect(to: endpoint, firewallMark: firewallMark)
    }
}
