// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc

/// Why a ``UnixStreamServer`` could not be opened.
public enum UnixSocketError: Error, Sendable {
    /// `socket(2)` failed.
    case noSocket(reason: String)
    /// Something answers at the path already.
    case inUse
    /// The path does not fit `sun_path`.
    case pathTooLong
    /// `bind` or `listen` failed.
    case cannotBind(reason: String)
}

/// A Unix stream socket that serves one request line per connection: the daemon's control
/// socket. The socket file is created mode 0600 by the kernel itself (umask 0177 around `bind`),
/// so no `chmod` ever runs on a path in a directory another account may own.
public final class UnixStreamServer: Sendable {
    // The listening fd is set in init and closed in stop(); the accept thread only reads it.
    public let path: String
    private let fd: Int32
    private let stopped = Semaphore()

    /// Creates `directory` (mode 0700) if needed, replaces a stale socket file at `path` (one
    /// nobody answers on), binds and listens.
    public init(path: String, directory: String) throws(UnixSocketError) {
        self.path = path
        Posix.makeDirectories(directory)
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw .noSocket(reason: String(cString: strerror(errno))) }
        if let live = UnixStreamClient.connect(path: path) {
            close(live)
            close(socketFD)
            throw .inUse
        }
        unlink(path)
        guard var address = Self.address(path) else {
            close(socketFD)
            throw .pathTooLong
        }
        guard Self.bindPrivately(socketFD, address: &address) == 0, listen(socketFD, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(socketFD)
            throw .cannotBind(reason: reason)
        }
        fd = socketFD
    }

    /// The `sockaddr_un` of `path`, or nil when it is too long.
    static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        return address
    }

    /// Binds with umask 0177 (Linux gives a socket 0777 less the umask). Nothing else runs yet
    /// that could change the process-wide umask meanwhile (the control socket is made on the main
    /// thread before any other thread starts). Returns 0, or -1 with `errno` set.
    static func bindPrivately(_ fd: Int32, address: inout sockaddr_un) -> Int32 {
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindError = errno
        umask(previousMask)
        errno = bindError
        return bound
    }

    /// Serves connections on a thread named `threadName`: reads one request (at most 64 bytes,
    /// 2 s), answers `answer(request)` with leading and trailing white space trimmed, closes.
    /// False when no thread could be started.
    public func start(threadName: String, answer: @escaping @Sendable (String) -> String) -> Bool {
        startThread(name: threadName) { [self] in
            acceptLoop(answer)
            stopped.signal()
        }
    }

    /// Stops serving and removes the socket file (waits up to 2 s for the thread).
    public func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
        _ = stopped.wait(seconds: 2)
    }

    /// Removes the socket file without serving (start-up failed after the socket was made).
    public func discard() {
        close(fd)
        unlink(path)
    }

    /// Serves connections on a thread named `threadName`, one at a time: `handle` gets each
    /// connection (reads time out after `readTimeoutSeconds`) and the connection is closed when it
    /// returns. Connections from a user other than root and this process's own are closed at once
    /// (`SO_PEERCRED`). False when no thread could be started.
    public func serveConnections(
        threadName: String, readTimeoutSeconds: Int = 5, handle: @escaping @Sendable (UnixStreamConnection) -> Void
    ) -> Bool {
        startThread(name: threadName) { [self] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    break
                }
                let connection = UnixStreamConnection(fd: client, readTimeoutSeconds: readTimeoutSeconds)
                if let uid = connection.peerUID, uid == 0 || uid == geteuid() { handle(connection) }
                connection.close()
            }
            stopped.signal()
        }
    }

    private func acceptLoop(_ answer: (String) -> String) {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            serve(client, answer)
            close(client)
        }
    }

    private func serve(_ client: Int32, _ answer: (String) -> String) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8](repeating: 0, count: 64)
        let count = read(client, &request, request.count)
        let text = count > 0 ? String(decoding: request[0..<count], as: UTF8.self) : ""
        let line = String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        Posix.writeAll(client, Array(answer(line).utf8))
    }
}

/// One accepted connection of a ``UnixStreamServer``: lines in, text out. Used by one thread.
public final class UnixStreamConnection {
    /// What ``readLine(maximumLength:)`` found.
    public enum Line: Equatable {
        /// A line, without its newline.
        case line(String)
        /// The peer closed the connection (or the read failed) before a newline.
        case end
        /// More than the maximum before a newline; the rest of the stream is not read.
        case tooLong
        /// Nothing arrived within the read timeout.
        case timedOut
    }

    private var fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0
    /// The connecting process's user id (`SO_PEERCRED`), nil if the kernel did not say.
    public let peerUID: UInt32?

    init(fd: Int32, readTimeoutSeconds: Int) {
        self.fd = fd
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var uid: UInt32 = 0
        peerUID = vpnd_peer_uid(fd, &uid) == 0 ? uid : nil
    }

    /// The next line, at most `maximumLength` bytes before its newline.
    public func readLine(maximumLength: Int) -> Line {
        var scanned = start
        while true {
            if let newline = buffer[scanned...].firstIndex(of: 0x0A) {
                guard newline - start <= maximumLength else { return .tooLong }
                let line = String(decoding: buffer[start..<newline], as: UTF8.self)
                start = newline + 1
                if start > 65536 {
                    buffer.removeFirst(start)
                    start = 0
                }
                return .line(line)
            }
            scanned = buffer.count
            guard scanned - start <= maximumLength else { return .tooLong }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .timedOut }
            if count <= 0 { return .end }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes all of `text` (a peer that went away is ignored).
    public func write(_ text: String) {
        guard fd >= 0 else { return }
        Posix.writeAll(fd, Array(text.utf8))
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}

@available(*, unavailable)
extension UnixStreamConnection: Sendable {}

/// The client side of a ``UnixStreamServer``.
public enum UnixStreamClient {
    /// Sends `request` to the server at `path` and returns everything it answers until it closes;
    /// nil when nothing listens there.
    public static func exchange(path: String, request: String) -> String? {
        guard let fd = connect(path: path) else { return nil }
        defer { close(fd) }
        Posix.writeAll(fd, Array(request.utf8))
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            reply.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: reply, as: UTF8.self)
    }

    /// Connects to `path`; nil when nothing listens there.
    static func connect(path: String) -> Int32? {
        guard var address = UnixStreamServer.address(path) else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            close(fd)
            return nil
        }
        return fd
    }
}

extension Posix {
    /// Whether this process may read directory `path` (`access(R_OK)`).
    public static func canRead(_ path: String) -> Bool { access(path, R_OK) == 0 }

    /// Sleeps `milliseconds`.
    public static func sleep(milliseconds: Int) { usleep(useconds_t(max(0, milliseconds)) * 1000) }
}

extension Posix {
    /// The name of the network namespace this process runs in, as `ip netns` knows it (the entry
    /// of /run/netns that is this namespace), or nil: the host's, or one without a name.
    public static func networkNamespaceName() -> String? {
        var ours = stat()
        guard stat("/proc/self/ns/net", &ours) == 0 else { return nil }
        for name in directoryEntries("/run/netns") ?? [] where name != "." && name != ".." {
            var entry = stat()
            if stat("/run/netns/" + name, &entry) == 0, entry.st_ino == ours.st_ino, entry.st_dev == ours.st_dev {
                return name
            }
        }
        return nil
    }

    /// Creates `path` (mode 0700) and its missing parents (0755, so that an account vpnd switches
    /// to can reach its own directory inside); existing ones are left as they are.
    public static func makeDirectories(_ path: String) {
        var prefix = path.hasPrefix("/") ? "" : "."
        let parts = path.split(separator: "/")
        for (i, part) in parts.enumerated() {
            prefix += "/" + part
            mkdir(prefix, i == parts.count - 1 ? 0o700 : 0o755)
        }
    }
}
