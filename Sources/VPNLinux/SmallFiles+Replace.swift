// SPDX-License-Identifier: MIT
import Glibc

extension SmallFiles {
    /// Replaces the contents of the existing file at `path` with `bytes` atomically: a temporary
    /// file in the same directory (`O_EXCL`, the original's mode and owner), written, `fsync`ed,
    /// renamed over the original, and the directory `fsync`ed. A reader sees the old file or the
    /// new one, never a part. A symbolic link at `path` is kept: its target is replaced.
    public static func replace(_ path: String, bytes: [UInt8]) throws(FileAccessError) {
        guard let resolved = realpath(path, nil) else {
            switch errno {
            case ENOENT: throw .notFound
            case EACCES: throw .permissionDenied
            default: throw .system("realpath")
            }
        }
        let target = String(cString: resolved)
        free(resolved)
        var info = stat()
        guard stat(target, &info) == 0 else { throw .system("stat") }
        guard info.st_mode & 0o170000 == 0o100000 else { throw .notRegularFile }
        let directory = Posix.containingDirectory(of: target)
        let base = target.split(separator: "/").last.map(String.init) ?? "file"
        var temporary = ""
        var fd: Int32 = -1
        for attempt in 0..<100 {
            temporary = directory + "/." + base + ".vpnd-\(getpid())-\(attempt)"
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw errno == EACCES ? .permissionDenied : .system("open") }
        var renamed = false
        defer {
            if fd >= 0 { close(fd) }
            if !renamed { unlink(temporary) }
        }
        guard fchmod(fd, info.st_mode & 0o7777) == 0 else { throw .system("fchmod") }
        if info.st_uid != geteuid() || info.st_gid != getegid() {
            guard fchown(fd, info.st_uid, info.st_gid) == 0 else { throw .system("fchown") }
        }
        try writeAll(fd, bytes)
        guard fsync(fd) == 0 else { throw .system("fsync") }
        guard rename(temporary, target) == 0 else { throw .system("rename") }
        renamed = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }
}

extension Posix {
    /// Runs `body` while holding an exclusive `flock` on the directory `path`, so that two
    /// commands editing files in it (`vpnd peer add` twice at once) take turns; waits for the
    /// other. Returns nil (and runs nothing) when the directory cannot be opened.
    public static func withDirectoryLock<R>(_ path: String, _ body: () throws -> R) rethrows -> R? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
