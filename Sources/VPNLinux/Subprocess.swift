// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc

/// Runs a short command to completion the way wg-quick runs its helpers (`resolvconf`, a hook's
/// `bash -c`): the daemon's environment, stdin from the given bytes (or /dev/null), stdout and
/// stderr together handed back line by line, every other descriptor closed, and a time limit
/// after which the command and everything it started in its process group are killed.
public enum Subprocess {
    /// How a command ended.
    public enum Outcome: Equatable, Sendable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// A signal killed it.
        case signaled(Int32)
        /// It ran past its time limit and was killed (with its process group).
        case timedOut(Duration)
        /// It could not be started (the reason, e.g. "No such file or directory").
        case notStarted(String)

        public var succeeded: Bool { self == .exited(0) }

        /// "exited with status 1", "was killed by signal 9 (SIGKILL)", "did not finish within 60 s
        /// and was killed", "could not be started: ...".
        public var description: String {
            switch self {
            case .exited(let status): return "exited with status \(status)"
            case .signaled(let signal): return "was killed by signal \(signal) (\(Subprocess.signalName(signal)))"
            case .timedOut(let limit): return "did not finish within \(limit.components.seconds) s and was killed"
            case .notStarted(let reason): return "could not be started: \(reason)"
            }
        }
    }

    /// The longest output line handed back; a longer one comes back in pieces of this size.
    public static let maxLineBytes = 2048

    /// Runs `path` with `arguments` (argv[0] is `path`), writing `input` to its stdin, and calls
    /// `line` for each line it prints (stdout and stderr in the order written; control
    /// characters but tab shown as `?`). Returns once the command has exited (what a background
    /// process it left behind prints after that is not read), or when `timeLimit` has passed:
    /// then the command's process group is killed (SIGKILL).
    public static func run(
        _ path: String, arguments: [String], input: [UInt8] = [], timeLimit: Duration, line: (String) -> Void
    ) -> Outcome {
        var output: [Int32] = [-1, -1]
        let made = vpnd_pipe_cloexec(&output)
        guard made == 0 else { return .notStarted("pipe: " + String(cString: strerror(-made))) }
        var stdin: [Int32] = [-1, -1]
        if !input.isEmpty {
            let made = vpnd_pipe_cloexec(&stdin)
            guard made == 0 else {
                let reason = String(cString: strerror(-made))
                close(output[0])
                close(output[1])
                return .notStarted("pipe: " + reason)
            }
        }
        let argv = [path] + arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let pid = vpnd_spawn_captured(path, &cArguments, stdin[0], output[1])
        for p in cArguments { free(p) }
        close(output[1])
        if stdin[0] >= 0 { close(stdin[0]) }
        guard pid > 0 else {
            close(output[0])
            if stdin[1] >= 0 { close(stdin[1]) }
            return .notStarted(String(cString: strerror(-pid)))
        }
        _ = fcntl(output[0], F_SETFL, fcntl(output[0], F_GETFL) | O_NONBLOCK)
        var writer = stdin[1]
        if writer >= 0 { _ = fcntl(writer, F_SETFL, fcntl(writer, F_GETFL) | O_NONBLOCK) }
        var written = 0
        var lines = LineSplitter()
        let deadline = monotonicMilliseconds() + timeLimit.milliseconds
        var readerOpen = true
        var outcome: Outcome?
        var chunk = [UInt8](repeating: 0, count: 4096)

        /// Reads what is there now (at most `limit` bytes); false at end of file.
        func drain(limit: Int = Int.max) -> Bool {
            var total = 0
            while total < limit {
                let got = read(output[0], &chunk, chunk.count)
                if got > 0 {
                    lines.add(chunk[0..<got], line)
                    total += got
                    continue
                }
                if got < 0 && errno == EINTR { continue }
                return got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
            }
            return true
        }

        while outcome == nil {
            // The child's exit is checked every 50 ms: its output pipe may stay open in a
            // background process it started.
            var exitStatus: Int32 = 0, signal: Int32 = 0
            if vpnd_wait_status(pid, 1, &exitStatus, &signal) == 1 {
                if readerOpen { _ = drain(limit: 1 << 20) }
                outcome = signal != 0 ? .signaled(signal) : .exited(exitStatus)
                break
            }
            let now = monotonicMilliseconds()
            if now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                _ = vpnd_wait_status(pid, 0, &exitStatus, &signal)
                if readerOpen { _ = drain(limit: 1 << 20) }
                outcome = .timedOut(timeLimit)
                break
            }
            var fds: [pollfd] = []
            if readerOpen { fds.append(pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)) }
            if writer >= 0 { fds.append(pollfd(fd: writer, events: Int16(POLLOUT), revents: 0)) }
            let wait = Int32(min(50, max(1, deadline - now)))
            if fds.isEmpty {
                usleep(UInt32(wait) * 1000)
                continue
            }
            let ready = poll(&fds, nfds_t(fds.count), wait)
            if ready <= 0 { continue }
            for entry in fds where entry.revents != 0 {
                if entry.fd == output[0] {
                    if !drain(limit: 1 << 16) {
                        readerOpen = false
                    }
                } else if entry.fd == writer {
                    let sent = input.withUnsafeBytes { raw in
                        Glibc.write(writer, raw.baseAddress! + written, input.count - written)
                    }
                    if sent > 0 { written += sent }
                    if (sent < 0 && errno != EAGAIN && errno != EINTR) || written == input.count {
                        close(writer)  // all of it, or the command closed its stdin (EPIPE)
                        writer = -1
                    }
                }
            }
        }
        if writer >= 0 { close(writer) }
        close(output[0])
        lines.finish(line)
        return outcome!
    }

    /// The executable file `program` in one of the directories of `searchPath` (the value of
    /// PATH; nil: PATH of this process, or ``defaultPath`` without one), or nil. A name with a
    /// slash is taken as it is.
    public static func find(_ program: String, searchPath: String? = nil) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 && isRegularFile(program) ? program : nil }
        let path = searchPath ?? Posix.environment("PATH") ?? defaultPath
        for directory in path.split(separator: ":", omittingEmptySubsequences: false) {
            let base = directory.isEmpty ? "." : String(directory)
            let candidate = base.hasSuffix("/") ? base + program : base + "/" + program
            if access(candidate, X_OK) == 0 && isRegularFile(candidate) { return candidate }
        }
        return nil
    }

    /// The search path when PATH is not set.
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// PATH as this process has it (``defaultPath`` when it is not set), for messages.
    public static var searchPath: String { Posix.environment("PATH") ?? defaultPath }

    /// True when `path` itself is a symbolic link (wg-quick leaves the `tun.` prefix off for a
    /// `resolvconf` that is one: systemd-resolved's).
    public static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: return "SIGKILL"
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGPIPE: return "SIGPIPE"
        default: return "signal \(signal)"
        }
    }

    private static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

extension Duration {
    fileprivate var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Cuts a byte stream into printable lines.
struct LineSplitter {
    private var pending: [UInt8] = []

    mutating func add(_ bytes: ArraySlice<UInt8>, _ emit: (String) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                emit(Self.text(pending))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
                if pending.count >= Subprocess.maxLineBytes {
                    emit(Self.text(pending))
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
    }

    /// The last line, when it had no newline.
    mutating func finish(_ emit: (String) -> Void) {
        if !pending.isEmpty { emit(Self.text(pending)) }
        pending = []
    }

    static func text(_ bytes: [UInt8]) -> String {
        var cleaned = bytes
        if cleaned.last == UInt8(ascii: "\r") { cleaned.removeLast() }
        for i in cleaned.indices where (cleaned[i] < 0x20 && cleaned[i] != 0x09) || cleaned[i] == 0x7f {
            cleaned[i] = UInt8(ascii: "?")
        }
        return String(decoding: cleaned, as: UTF8.self)
    }
}
