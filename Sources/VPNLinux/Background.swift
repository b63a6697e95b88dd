// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc

/// Running on in the background the way wireguard-go does: the command starts itself again as
/// a child in a new session (stdin from /dev/null; stdout and stderr shared when asked, else
/// /dev/null too), waits until the child says it is ready, and returns; wg-quick relies on the
/// interface and its socket existing when the command returns. A child that fails to start
/// sends its one-line error back through the same pipe, so the caller prints it.
public enum Background {
    /// The environment variable naming the descriptor the child reports readiness on.
    public static let readyVariable = "VPND_WG_READY_FD"

    /// Starts `/proc/self/exe` (named `name` in argv[0]) with `arguments` and `environment` added, waits for
    /// its readiness (``notifyReady()``) and returns 0, or its exit status (1 if it died without
    /// one) when it stopped first.
    public static func relaunch(
        name: String, arguments: [String], environment: [String: String], keepOutput: Bool
    ) -> Int32 {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            Posix.printError("cannot start in the background: pipe: \(String(cString: strerror(errno)))\n")
            return 1
        }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        if fds[1] == 3 {  // keep it off descriptor 3, which the child's dup2 targets
            let moved = fcntl(fds[1], F_DUPFD_CLOEXEC, 10)
            close(fds[1])
            fds[1] = moved
        }
        var env: [String] = []
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if !environment.keys.contains(where: { text.hasPrefix($0 + "=") }) { env.append(text) }
            pointer += 1
        }
        for (name, value) in environment { env.append("\(name)=\(value)") }
        env.append("\(readyVariable)=3")
        let argv = [name] + arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnvironment: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for p in cArguments { free(p) }
            for p in cEnvironment { free(p) }
        }
        let rc = vpnd_spawn_detached("/proc/self/exe", &cArguments, &cEnvironment, fds[1], keepOutput ? 1 : 0)
        close(fds[1])
        guard rc > 0 else {
            close(fds[0])
            Posix.printError("cannot start in the background: posix_spawn: \(String(cString: strerror(-rc)))\n")
            return 1
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while reply.count < 4096 {
            let got = read(fds[0], &chunk, chunk.count)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            reply += chunk[0..<got]
            if reply.first == 1 { break }
        }
        close(fds[0])
        if reply.first == 1 { return 0 }
        if reply.count > 1 { Posix.printError(String(decoding: reply.dropFirst(), as: UTF8.self) + "\n") }
        var status: Int32 = 0
        waitpid(pid_t(rc), &status, 0)
        let exited = (status & 0x7f) == 0
        return exited ? max(1, (status >> 8) & 0xff) : 1
    }

    /// Tells the waiting parent that the child is ready (no-op when not started by ``relaunch``).
    public static func notifyReady() { report([1]) }

    /// Tells the waiting parent that the child could not start, and why (one line).
    public static func notifyFailure(_ message: String) { report([0] + Array(message.utf8.prefix(4000))) }

    private static func report(_ bytes: [UInt8]) {
        guard let text = Posix.environment(readyVariable), let fd = Int32(text), fd > 2 else { return }
        Posix.writeAll(fd, bytes)
        close(fd)
        unsetenv(readyVariable)
    }
}
