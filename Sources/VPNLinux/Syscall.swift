// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// Small wrappers that run a syscall, retry `EINTR` and hand back the value or the `Errno`.
enum Syscall {
    /// Runs `body` until it stops failing with `EINTR`; returns its value, or the errno when it is -1.
    @inline(__always)
    static func retrying<T: FixedWidthInteger>(_ body: () -> T) -> Result<T, Errno> {
        while true {
            let value = body()
            if value != -1 { return .success(value) }
            let code = Glibc.errno
            if code == EINTR { continue }
            return .failure(Errno(rawValue: code))
        }
    }

    /// True for `EAGAIN`/`EWOULDBLOCK`.
    @inline(__always)
    static func wouldBlock(_ errno: Errno) -> Bool {
        errno == .resourceTemporarilyUnavailable || errno == .wouldBlock
    }

    /// Sets an integer socket option.
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Result<Void, Errno> {
        var v = value
        return retrying { setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size)) }.map { _ in () }
    }

    /// Reads an integer socket option.
    static func getOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Result<Int32, Errno> {
        var v: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return retrying { getsockopt(fd, level, name, &v, &length) }.map { _ in v }
    }

    /// Closes `fd`, ignoring errors (Linux releases the descriptor even when close reports EINTR).
    static func close(_ fd: Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}

extension IOError {
    /// An error for a failed syscall: the errno's name and text, and `hint` or a generic hint for
    /// that errno.
    ///
    /// "bind 0.0.0.0:51820: address already in use (EADDRINUSE); another process ...".
    @inline(never)
    static func system(_ operation: String, subject: String, errno: Errno, hint: String? = nil) -> IOError {
        IOError(
            operation: operation, subject: subject, errno: errno.rawValue, reason: reason(errno.rawValue),
            hint: hint ?? genericHint(errno))
    }

    /// A failure that is not a syscall's (errno 0).
    @inline(never)
    static func invalid(_ operation: String, subject: String, reason: String, hint: String = "") -> IOError {
        IOError(operation: operation, subject: subject, errno: 0, reason: reason, hint: hint)
    }

    /// "address already in use (EADDRINUSE)".
    static func reason(_ code: Int32) -> String {
        let text = String(cString: vpnd_errno_text(code))
        let name = String(cString: vpnd_errno_name(code))
        return "\(text.prefix(1).lowercased())\(text.dropFirst()) (\(name))"
    }

    /// What a user can do about an errno when the operation has no better hint.
    static func genericHint(_ errno: Errno) -> String {
        switch errno.rawValue {
        case EPERM, EACCES: return "vpnd needs root or CAP_NET_ADMIN"
        case EADDRINUSE: return "another process uses this address and port"
        case ENXIO, ENODEV: return "no such network interface in this network namespace"
        case EMFILE, ENFILE: return "raise the open-file limit (ulimit -n)"
        case ENOMEM, ENOBUFS: return "the system is out of memory"
        case EAFNOSUPPORT: return "this address family (IPv4 or IPv6) is disabled on this host"
        default: return ""
        }
    }
}
