// SPDX-License-Identifier: MIT
import Logging
import VPNLinux

/// The commands the host set-up runs (hooks, resolvconf, resolvectl) and what it looks up on the
/// host to pick them; ``SystemHostCommands`` is the real one, unit tests give a fake.
protocol HostCommands: Sendable {
    /// The executable `program` on PATH, or nil.
    func find(_ program: String) -> String?
    /// PATH as searched, for messages.
    var searchPath: String { get }
    /// True when `path` is a symbolic link.
    func isSymbolicLink(_ path: String) -> Bool
    /// The text of a small host file, nil when it is not there or unreadable.
    func readFile(_ path: String) -> String?
    /// Runs `path` with `arguments` to completion or `timeLimit` (see ``Subprocess/run``).
    func run(_ path: String, _ arguments: [String], input: [UInt8], timeLimit: Duration, line: (String) -> Void)
        -> Subprocess.Outcome
}

struct SystemHostCommands: HostCommands {
    func find(_ program: String) -> String? { Subprocess.find(program) }
    var searchPath: String { Subprocess.searchPath }
    func isSymbolicLink(_ path: String) -> Bool { Subprocess.isSymbolicLink(path) }
    func readFile(_ path: String) -> String? { Posix.readTextFile(path) }
    func run(_ path: String, _ arguments: [String], input: [UInt8], timeLimit: Duration, line: (String) -> Void)
        -> Subprocess.Outcome
    {
        Subprocess.run(path, arguments: arguments, input: input, timeLimit: timeLimit, line: line)
    }
}

/// Where the host set-up's commands and their output are logged (vpnd's log; tests record).
struct HostLog: Sendable {
    var info: @Sendable (String) -> Void
    var warning: @Sendable (String) -> Void

    init(info: @escaping @Sendable (String) -> Void, warning: @escaping @Sendable (String) -> Void) {
        self.info = info
        self.warning = warning
    }

    init(_ logger: Logger) {
        info = { logger.info("\($0)") }
        warning = { logger.warning("\($0)") }
    }
}
