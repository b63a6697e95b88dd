// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc

/// systemd's notify protocol without libsystemd: datagrams (`READY=1`, `STATUS=...`,
/// `RELOADING=1`, `STOPPING=1`, `WATCHDOG=1`) to the Unix socket named by `$NOTIFY_SOCKET`
/// (a path, or `@name` for an abstract one). The socket is connected once, at start-up, so that
/// messages still go out after vpnd has switched to an unprivileged user. Thread-safe.
public final class SystemdNotifier: Sendable {
    private let fd: Int32
    /// `$WATCHDOG_USEC` as a duration, when systemd asked for keep-alive pings.
    public let watchdogInterval: Duration?

    /// Nil when `$NOTIFY_SOCKET` is unset, or cannot be reached (nothing to tell).
    public init?() {
        guard let target = Posix.environment("NOTIFY_SOCKET"), !target.isEmpty else { return nil }
        var bytes = Array(target.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let socketFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socketFD, $0, length) }
        }
        guard connected == 0 else {
            close(socketFD)
            return nil
        }
        fd = socketFD
        if let text = Posix.environment("WATCHDOG_USEC"), let microseconds = Int64(text), microseconds > 0 {
            watchdogInterval = .microseconds(microseconds)
        } else {
            watchdogInterval = nil
        }
    }

    deinit { close(fd) }

    /// Sends one message (lines `KEY=VALUE`); false when the datagram could not be sent.
    @discardableResult
    public func send(_ message: String) -> Bool {
        let bytes = Array(message.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// `MONOTONIC_USEC=...` for `RELOADING=1` (systemd's Type=notify-reload wants it).
    public static var monotonicMicroseconds: UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_nsec) / 1000
    }
}

extension Posix {
    /// This process's id.
    public static var processID: Int32 { getpid() }
}
