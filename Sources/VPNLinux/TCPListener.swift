// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// A non-blocking TCP listening socket (`SO_REUSEADDR`; dual-stack when bound to `[::]`).
///
/// With a `firewallMark`, the listener and every connection it accepts carry that `SO_MARK`
/// (the kernel gives an accepted connection the listener's mark, and its SYN-ACK too; accept
/// checks it and sets it where it differs).
///
/// Not thread-safe: owned by the thread that accepts.
public final class TCPListener: StreamListener {
    private let fd: Int32
    /// The bound address (with the port the kernel picked when asked for port 0).
    public let localEndpoint: Endpoint
    /// The `SO_MARK` of the listener and its connections (0: none).
    public let firewallMark: UInt32

    public var pollHandle: PollHandle { PollHandle(rawValue: fd) }

    /// Binds and listens on `endpoint`, marked with `firewallMark` (0: unmarked).
    ///
    /// - Throws: ``IOError``, e.g. "bind [::]:51820: address already in use (EADDRINUSE); ...".
    public init(bindingTo endpoint: Endpoint, backlog: Int32 = 16, firewallMark: UInt32 = 0) throws(IOError) {
        let socket = try Self.listeningSocket(
            bindingTo: endpoint, backlog: backlog,
            inUseHint: "another process (vpnd?) uses this port: pick another ListenPort or stop it")
        if firewallMark != 0, case .failure(let errno) = TCPConnection.markSocket(socket, firewallMark) {
            Syscall.close(socket)
            throw .system("setsockopt(SO_MARK)", subject: endpoint.description, errno: errno, hint: TCPConnection.markHint(errno))
        }
        fd = socket
        self.localEndpoint = VPNLinux.localEndpoint(of: socket)
        self.firewallMark = firewallMark
    }

    /// A non-blocking, close-on-exec TCP socket bound to `endpoint` and listening: the
    /// descriptor, which the caller owns. `inUseHint` is the hint for `EADDRINUSE`.
    ///
    /// The corresponding C calls are `socket`, `setsockopt(SO_REUSEADDR)`, `bind` and `listen`.
    static func listeningSocket(bindingTo endpoint: Endpoint, backlog: Int32, inUseHint: String) throws(IOError) -> Int32 {
        let family = endpoint.socketFamily
        let fd: Int32
        switch Syscall.retrying({ socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("socket(TCP)", subject: endpoint.description, errno: errno)
        }
        do throws(IOError) {
            _ = Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if family == AF_INET6 {
                _ = Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, endpoint.isUnspecified ? 0 : 1)
            }
            guard case (var address, let length)? = endpoint.sockaddr(family: family) else {
                throw .invalid("bind", subject: endpoint.description, reason: "unsupported address")
            }
            if case .failure(let errno) = Syscall.retrying({ withSockaddrPointer(&address) { bind(fd, $0, length) } }) {
                let hint = errno.rawValue == EADDRINUSE ? inUseHint : IOError.genericHint(errno)
                throw .system("bind", subject: endpoint.description, errno: errno, hint: hint)
            }
            if case .failure(let errno) = Syscall.retrying({ listen(fd, backlog) }) {
                throw .system("listen", subject: endpoint.description, errno: errno)
            }
        } catch {
            Syscall.close(fd)
            throw error
        }
        return fd
    }

    deinit { Syscall.close(fd) }

    /// Accepts one pending connection; nil when none is waiting.
    public func accept() throws(IOError) -> (any StreamConnection)? { try acceptConnection() }

    /// Accepts one pending connection as a ``TCPConnection``; nil when none is waiting.
    /// Connections that died while queued (`ECONNABORTED`) are skipped.
    ///
    /// The corresponding C call is `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`.
    public func acceptConnection() throws(IOError) -> TCPConnection? {
        while true {
            var storage = sockaddr_storage()
            let rc = vpnd_accept(fd, &storage)
            let result: Result<Int32, Errno> = rc >= 0 ? .success(rc) : .failure(Errno(rawValue: -rc))
            switch result {
            case .success(let connection):
                let accepted = TCPConnection(adopting: connection, remote: Endpoint(sockaddr: storage), connected: true)
                // Inherited from the listener; set where it is not (a kernel that does otherwise).
                if firewallMark != 0 && accepted.firewallMark != firewallMark {
                    _ = TCPConnection.markSocket(connection, firewallMark)
                }
                return accepted
            case .failure(let errno):
                if Syscall.wouldBlock(errno) { return nil }
                if errno.rawValue == ECONNABORTED || errno.rawValue == EPROTO { continue }
                throw .system("accept", subject: localEndpoint.description, errno: errno)
            }
        }
    }
}
