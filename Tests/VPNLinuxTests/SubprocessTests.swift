// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Testing
import VPNLinux

/// ``Subprocess``: the runner behind hooks and resolvconf (real processes, bash).
@Suite struct SubprocessTests {
    static let bash = "/bin/bash"

    static func run(_ script: String, input: String = "", limit: Duration = .seconds(10)) -> (Subprocess.Outcome, [String]) {
        var lines: [String] = []
        let outcome = Subprocess.run(
            bash, arguments: ["-c", script], input: Array(input.utf8), timeLimit: limit) { lines.append($0) }
        return (outcome, lines)
    }

    @Test("stdout and stderr come back line by line in the order written, with the exit status; a last line without a newline too")
    func outputAndStatus() {
        let (outcome, lines) = Self.run("echo one; echo two >&2; printf 'three\\tx\\033[1m'; exit 3")
        #expect(outcome == .exited(3))
        #expect(!outcome.succeeded)
        #expect(lines == ["one", "two", "three\tx?[1m"])
        #expect(outcome.description == "exited with status 3")
    }

    @Test("stdin gets the input bytes; without input it reads /dev/null")
    func input() {
        let (outcome, lines) = Self.run("cat; echo done", input: "nameserver 10.0.0.1\nsearch a.example\n")
        #expect(outcome == .exited(0) && outcome.succeeded)
        #expect(lines == ["nameserver 10.0.0.1", "search a.example", "done"])
        let (_, empty) = Self.run("wc -c")
        #expect(empty.map { $0.trimmingCharacters(in: .whitespaces) } == ["0"])
    }

    @Test("past its time limit the command and what it started in the background are killed")
    func timeLimit() throws {
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("vpnd-subprocess-\(getpid())").path
        defer { unlink(pidFile) }
        let start = Date()
        let (outcome, _) = Self.run("sleep 30 & echo $! > \(pidFile); sleep 30", limit: .seconds(1))
        let took = Date().timeIntervalSince(start)
        #expect(outcome == .timedOut(.seconds(1)))
        #expect(outcome.description == "did not finish within 1 s and was killed")
        #expect(took < 5)
        let child = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Killed: gone, or a zombie that nobody reaped yet (its parent bash was killed too).
        func ended() -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8) else { return true }
            return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
        }
        var gone = false
        for _ in 0..<50 where !gone {
            gone = ended()
            if !gone { usleep(20_000) }
        }
        #expect(gone, "the background sleep \(child) still runs")
    }

    @Test("a background process that keeps the output open does not hold the caller once the command exited")
    func backgroundKeepsPipe() {
        let start = Date()
        let (outcome, lines) = Self.run("(sleep 3; echo late) & echo early")
        #expect(outcome == .exited(0))
        #expect(lines == ["early"])
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test("a signal, and a program that cannot be started")
    func signalAndNotStarted() {
        let (outcome, _) = Self.run("kill -9 $$")
        #expect(outcome == .signaled(SIGKILL))
        #expect(outcome.description == "was killed by signal 9 (SIGKILL)")
        let missing = Subprocess.run("/nonexistent/resolvconf", arguments: [], timeLimit: .seconds(1)) { _ in }
        #expect(missing == .notStarted("No such file or directory"))
    }

    @Test("the command inherits no descriptor but 0, 1 and 2, and no blocked signal")
    func noInheritedDescriptors() throws {
        let fd = open("/dev/null", O_RDONLY)  // no O_CLOEXEC
        #expect(fd > 2)
        defer { close(fd) }
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGTERM)
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let (outcome, lines) = Self.run("ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; grep SigBlk /proc/self/status")
        #expect(outcome == .exited(0))
        // ls's own directory descriptor is 3.
        #expect(lines.first == "0 1 2 3 ")
        #expect(lines.last == "SigBlk:\t0000000000000000")
    }

    @Test("find searches the given PATH for an executable file, in order; a name with a slash is taken as it is")
    func find() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("vpnd-find-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        for dir in ["a", "b", "c"] { try FileManager.default.createDirectory(atPath: "\(base)/\(dir)", withIntermediateDirectories: true) }
        _ = FileManager.default.createFile(atPath: "\(base)/a/tool", contents: Data("x".utf8), attributes: [.posixPermissions: 0o644])
        _ = FileManager.default.createFile(atPath: "\(base)/b/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        _ = FileManager.default.createFile(atPath: "\(base)/c/tool", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        try FileManager.default.createDirectory(atPath: "\(base)/a/dir", withIntermediateDirectories: true)
        #expect(Subprocess.find("tool", searchPath: "\(base)/a:\(base)/b:\(base)/c") == "\(base)/b/tool")
        #expect(Subprocess.find("dir", searchPath: "\(base)/a") == nil)
        #expect(Subprocess.find("tool", searchPath: "\(base)/a") == nil)
        #expect(Subprocess.find("\(base)/c/tool", searchPath: "") == "\(base)/c/tool")
        try FileManager.default.createSymbolicLink(atPath: "\(base)/c/link", withDestinationPath: "\(base)/c/tool")
        #expect(Subprocess.isSymbolicLink("\(base)/c/link"))
        #expect(!Subprocess.isSymbolicLink("\(base)/c/tool"))
        #expect(Subprocess.find("link", searchPath: "\(base)/c") == "\(base)/c/link")
    }

    @Test("an overlong line comes back in pieces of maxLineBytes")
    func longLine() {
        let (outcome, lines) = Self.run("head -c 5000 /dev/zero | tr '\\0' x; echo")
        #expect(outcome == .exited(0))
        #expect(lines.map(\.count) == [2048, 2048, 904])
    }
}
