// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics
import SystemPackage

/// Kernel parameters under /proc/sys, by their sysctl names ("net.ipv4.ip_forward"). The
/// network ones belong to the network namespace of the calling process.
public enum Sysctl {
    /// The file that holds `name`.
    public static func path(of name: String) -> String {
        "/proc/sys/" + name.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/")
    }

    /// The value of `name` without its final newline; nil when the kernel has no such parameter
    /// (IPv6 disabled, say) or it cannot be read.
    public static func read(_ name: String) -> String? {
        guard var text = Posix.readTextFile(path(of: name)) else { return nil }
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Sets `name` to `value`.
    public static func write(_ name: String, _ value: String) throws(IOError) {
        let file = path(of: name)
        let fd = open(file, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw .system("open", subject: file, errno: Errno(rawValue: code), hint: hint(code))
        }
        defer { close(fd) }
        let bytes = Array((value + "\n").utf8)
        guard Posix.writeAll(fd, bytes) else {
            let code = errno
            throw .system("writing \(value) to", subject: file, errno: Errno(rawValue: code), hint: hint(code))
        }
    }

    private static func hint(_ code: Int32) -> String? {
        switch code {
        case EACCES, EPERM: return "vpnd needs root or CAP_NET_ADMIN"
        case EROFS: return "/proc/sys is read-only here (under systemd: ProtectKernelTunables=yes; see docs/operations.md)"
        default: return nil
        }
    }
}
