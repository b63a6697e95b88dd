// SPDX-License-Identifier: MIT
import Glibc
import SystemPackage
import VPNBasics

/// Kernel settings under /proc/sys. The `net.` ones belong to the network namespace of the
/// process that writes them.
public enum Sysctl {
    /// The file of setting `name`: "net.ipv4.conf.all.src_valid_mark" is
    /// /proc/sys/net/ipv4/conf/all/src_valid_mark.
    public static func path(of name: String) -> String {
        "/proc/sys/" + name.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/")
    }

    /// The value of setting `name` without its newline; nil when it cannot be read.
    public static func read(_ name: String) -> String? {
        guard let text = Posix.readTextFile(path(of: name)) else { return nil }
        return String(text.prefix { $0 != "\n" })
    }

    /// Sets `name` to `value`. The corresponding command is `sysctl -w name=value`.
    public static func write(_ name: String, _ value: String) throws(IOError) {
        let path = path(of: name)
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            let code = Errno(rawValue: errno)
            let hint = code.rawValue == ENOENT ? "this kernel has no setting \(name)" : IOError.genericHint(code)
            throw .system("sysctl -w", subject: "\(name)=\(value)", errno: code, hint: hint)
        }
        defer { _ = close(fd) }
        let bytes = Array((value + "\n").utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written != bytes.count {
            let code = Errno(rawValue: written < 0 ? errno : EIO)
            throw .system("sysctl -w", subject: "\(name)=\(value)", errno: code)
        }
    }
}

extension Posix {
    /// The owner (uid) of what is at `path`, not following a symbolic link there; nil if nothing is.
    public static func owner(of path: String) -> UInt32? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_uid
    }

    /// The process's effective user id.
    public static var effectiveUserID: UInt32 { geteuid() }
}
