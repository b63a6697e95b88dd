// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc

/// The few operating-system services the commands need (files, the environment, standard error),
/// on Glibc directly (no Foundation: linked statically, it costs the daemon several MiB of
/// resident memory for a handful of calls). VPNCommands reaches the system only through VPNLinux.
public enum Posix {
    /// The CPUs this process may run on (its affinity mask, as `nproc` counts), at least 1.
    public static func usableCPUCount() -> Int { Int(vpnd_usable_cpus()) }

    /// The value of environment variable `name`, or nil when it is not set.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }

    /// The whole file at `path` as UTF-8 text; nil when it cannot be opened or read, or is not
    /// valid UTF-8.
    public static func readTextFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// What ``readOwnFile(_:maxBytes:)`` found.
    public enum OwnFileRead: Equatable, Sendable {
        case text(String)
        /// Nothing at the path.
        case missing
        /// Something is there but was not read; `reason` says what, e.g. "is a symbolic link".
        case refused(reason: String)
    }

    /// Reads a small file that lives in a directory another account may control (the run
    /// directory after a privilege drop): the last component is never followed if it is a
    /// symbolic link (`O_NOFOLLOW`), the open never blocks (`O_NONBLOCK`: a FIFO cannot hang it),
    /// anything but a regular file is refused after `fstat`, and so is a file over `maxBytes`.
    public static func readOwnFile(_ path: String, maxBytes: Int) -> OwnFileRead {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let error = errno
            if error == ENOENT { return .missing }
            if error == ELOOP { return .refused(reason: "is a symbolic link") }
            return .refused(reason: "cannot be opened (\(String(cString: strerror(error))))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            return .refused(reason: "cannot be examined (\(String(cString: strerror(errno))))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else { return .refused(reason: "is not a regular file") }
        let tooLarge = OwnFileRead.refused(reason: "is larger than \(maxBytes) bytes")
        guard info.st_size <= maxBytes else { return tooLarge }
        // Read at most one byte more than allowed, in case the file grows meanwhile.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= maxBytes {
            let want = min(chunk.count, maxBytes + 1 - bytes.count)
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, want) }
            if got < 0 {
                if errno == EINTR { continue }
                return .refused(reason: "cannot be read (\(String(cString: strerror(errno))))")
            }
            if got == 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        guard bytes.count <= maxBytes else { return tooLarge }
        return .text(String(decoding: bytes, as: UTF8.self))
    }

    /// Replaces `path` atomically with a regular file holding `text`, mode 0600, without following
    /// a symbolic link planted at `path` or at the temporary `path.tmp`: the temporary is created
    /// afresh (`O_EXCL | O_NOFOLLOW`, after removing whatever had that name), written, synced and
    /// renamed over `path` (rename replaces a link itself, never its target). False on any failure,
    /// leaving `path` as it was.
    public static func replaceFileAtomically(_ path: String, _ text: String) -> Bool {
        let temporary = path + ".tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else { return false }
        let written = writeAll(fd, Array(text.utf8)) && fsync(fd) == 0
        guard close(fd) == 0 && written, rename(temporary, path) == 0 else {
            unlink(temporary)
            return false
        }
        return true
    }

    /// Writes every byte to `fd`, retrying short writes and EINTR; false on an error.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// Writes `message` to standard error.
    public static func printError(_ message: String) {
        writeAll(STDERR_FILENO, Array(message.utf8))
    }

    /// True when something exists at `path` (following symbolic links).
    public static func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// The names in directory `path` (without "." and ".."), in no particular order; nil when it
    /// cannot be read.
    public static func directoryEntries(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The directory that contains the file at `path`, as an absolute path when `path` is
    /// relative (resolved against the working directory, "." and ".." removed, as Foundation's
    /// URL did); an absolute path is cut as written. "/x" gives "/".
    public static func containingDirectory(of path: String) -> String {
        var components: [Substring] = []
        if !path.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&buffer, buffer.count) != nil {
                let cwd = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                components = cwd.split(separator: "/")
            }
            for component in path.split(separator: "/") {
                switch component {
                case ".": continue
                case "..": if !components.isEmpty { components.removeLast() }
                default: components.append(component)
                }
            }
            if !components.isEmpty { components.removeLast() }
            return "/" + components.joined(separator: "/")
        }
        // Absolute: the text before the last component, as written.
        var text = Substring(path)
        while text.hasSuffix("/") { text = text.dropLast() }
        if let slash = text.lastIndex(of: "/") { text = text[..<slash] }
        while text.hasSuffix("/") { text = text.dropLast() }
        return text.isEmpty ? "/" : String(text)
    }

    /// `printf`'s "%.2f" of `value`.
    public static func twoDecimals(_ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.2f", $0) }
        guard count > 0 else { return "\(value)" }
        return String(decoding: buffer.prefix(Int(min(count, 63))).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A counting semaphore (POSIX `sem_t`) for one thread to tell another it has finished.
public final class Semaphore: @unchecked Sendable {
    // sem_t is made for sharing between threads: every operation on it is atomic.
    private let semaphore: UnsafeMutablePointer<sem_t>

    public init() {
        semaphore = .allocate(capacity: 1)
        sem_init(semaphore, 0, 0)
    }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    public func signal() { sem_post(semaphore) }

    public func wait() {
        while sem_wait(semaphore) != 0 && errno == EINTR {}
    }

    /// Waits at most `seconds`; false on a timeout.
    public func wait(seconds: Int) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += seconds
        while sem_timedwait(semaphore, &deadline) != 0 {
            if errno != EINTR { return false }
        }
        return true
    }
}

/// Starts `body` on a new, detached POSIX thread named `name` (at most 15 bytes).
/// `stackSize` nil keeps the system default. Returns false when the thread could not be created.
@discardableResult
public func startThread(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { argument in
        let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
        // pthread_setname_np without _GNU_SOURCE: the thread's comm file.
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            Posix.writeAll(fd, Array(start.name.utf8.prefix(15)))
            close(fd)
        }
        start.body()
        return nil
    }, start)
    if result != 0 {
        Unmanaged<Start>.fromOpaque(start).release()
        return false
    }
    return true
}
