// SPDX-License-Identifier: MIT
import Glibc

/// Why a small file (a key, a config) could not be read or written.
public enum FileAccessError: Error, Equatable, Sendable {
    case notFound
    case permissionDenied
    /// A directory, a device or anything else that is not a regular file.
    case notRegularFile
    /// A file that had to be private and that group or others can access; `mode` is its bits.
    case exposed(mode: UInt32)
    case tooLarge(byteCount: Int)
    /// Creating a file that must be new found one there.
    case alreadyExists
    /// Any other failed system call.
    case system(operation: String, errno: Int32, message: String)

    static func system(_ operation: String) -> FileAccessError {
        let code = errno
        return .system(operation: operation, errno: code, message: String(cString: strerror(code)))
    }
}

/// Small files that hold secrets or are written with a chosen mode: key files, the keygen's
/// directories, the standard streams. Secrets read here pass through memory that is zeroed
/// before it is freed.
public enum SmallFiles {
    /// The permission bits of a private file that make it unsafe: any access by group or others.
    public static let exposedBits: UInt32 = 0o077

    /// Opens `path`, checks it is a regular file (with `requirePrivate`, one that group and others
    /// cannot access) of at most `buffer.count - 1` bytes, and reads it into `buffer`; returns the
    /// byte count. The caller owns `buffer` (and zeroes it when it held a secret).
    public static func read(
        _ path: String, requirePrivate: Bool, into buffer: UnsafeMutableRawBufferPointer
    ) throws(FileAccessError) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            switch errno {
            case ENOENT: throw .notFound
            case EACCES, EPERM: throw .permissionDenied
            case EISDIR: throw .notRegularFile
            default: throw .system("open")
            }
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .system("fstat") }
        guard info.st_mode & 0o170000 == 0o100000 else { throw .notRegularFile }
        if requirePrivate, UInt32(info.st_mode) & exposedBits != 0 { throw .exposed(mode: UInt32(info.st_mode)) }
        guard info.st_size < buffer.count else { throw .tooLarge(byteCount: Int(info.st_size)) }
        return try readAll(fd, into: buffer)
    }

    /// Reads standard input into `buffer` until its end or the buffer is full; returns the count
    /// (`buffer.count` means there may be more).
    public static func readStandardInput(into buffer: UnsafeMutableRawBufferPointer) throws(FileAccessError) -> Int {
        try readAll(STDIN_FILENO, into: buffer, allowFull: true)
    }

    private static func readAll(
        _ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, allowFull: Bool = false
    ) throws(FileAccessError) -> Int {
        var count = 0
        while count < buffer.count {
            let n = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("read")
            }
            if n == 0 { break }
            count += n
        }
        if !allowFull && count >= buffer.count { throw .tooLarge(byteCount: count) }
        return count
    }

    /// Creates `path` afresh with mode 0600 (umask 077 around `open`, `O_EXCL | O_NOFOLLOW`, then
    /// `fchmod` against a default ACL) and writes `bytes`; with `replace`, whatever is at `path`
    /// goes first.
    public static func createPrivate(_ path: String, bytes: [UInt8], replace: Bool) throws(FileAccessError) {
        if replace, unlink(path) != 0, errno != ENOENT { throw .system("unlink") }
        let previousMask = umask(0o077)
        defer { umask(previousMask) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
        guard fd >= 0 else { throw errno == EEXIST ? .alreadyExists : .system("open") }
        defer { close(fd) }
        guard fchmod(fd, 0o600) == 0 else { throw .system("fchmod") }
        try writeAll(fd, bytes)
    }

    /// Writes `bytes` to `path` (mode 0644 when created), replacing what is there; never follows
    /// a symbolic link at `path`.
    public static func writePublic(_ path: String, bytes: [UInt8]) throws(FileAccessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(0o644))
        guard fd >= 0 else { throw .system("open") }
        defer { close(fd) }
        try writeAll(fd, bytes)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(FileAccessError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("write")
            }
            written += n
        }
    }

    /// Creates directory `path` and any missing parents with mode 0700; an existing directory is
    /// fine, anything else there is `notRegularFile`. The error names the path that failed.
    public static func makeDirectories(_ path: String) throws(FileAccessError) -> Void {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component
            if mkdir(prefix, 0o700) != 0, errno != EEXIST { throw .system("mkdir") }
            prefix += "/"
        }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o170000 == 0o040000 else { throw .notRegularFile }
    }

    /// The permission bits (the low 12) of what is at `path`, following links; nil if nothing is.
    public static func mode(_ path: String) -> UInt32? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return UInt32(info.st_mode) & 0o7777
    }

    /// Whether standard output is a regular file that group or others can access.
    public static var standardOutputIsExposedFile: Bool {
        var info = stat()
        return fstat(STDOUT_FILENO, &info) == 0 && info.st_mode & 0o170000 == 0o100000
            && UInt32(info.st_mode) & exposedBits != 0
    }

    /// Removes the file at `path`, if any.
    public static func remove(_ path: String) { unlink(path) }
}

extension Posix {
    /// Exits the process with `status` at once.
    public static func exit(_ status: Int32) -> Never { Glibc.exit(status) }
}
