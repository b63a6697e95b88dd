// SPDX-License-Identifier: MIT
import Foundation
import Testing

/// Runs one integration scenario, `scripts/itest/<name>.sh`, as a child bash process.
///
/// The script gets `VPND_BIN_DIR` (the directory holding the `vpnd` and `vpnd-keygen` executables
/// that `swift test` built next to the test bundle, unless the environment already sets it) and
/// `VPND_REPO`. A non-zero exit fails the current test with the script's last lines; a scenario that
/// outlives its time limit gets SIGTERM (its trap cleans up), then SIGKILL.
enum Scenario {
    /// The reason integration tests cannot run here, or nil when they can.
    static let missingRequirement: String? = {
        if geteuid() != 0 { return "not running as root" }
        if !FileManager.default.fileExists(atPath: "/dev/net/tun") { return "/dev/net/tun is missing" }
        return nil
    }()

    /// True when `CI=true`: then a scenario that cannot run fails instead of being skipped.
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Whether tests should be enabled at all: they run where they can, and under CI always (to fail).
    static let shouldRun = missingRequirement == nil || isCI

    /// The package root, found from this source file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // IntegrationTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    /// The directory of the built executables: `VPND_BIN_DIR` if set, else the test bundle's own.
    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["VPND_BIN_DIR"], !dir.isEmpty { return dir }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().path
    }()

    /// Runs `scripts/itest/<name>.sh` and records an issue if it fails or times out.
    /// `environment` adds to (or overrides) the test's environment, e.g. `VPND_EXTRA_FLAGS` for a
    /// variant of a scenario; the variant's name is `label` in messages and log names.
    static func run(
        _ name: String, timeLimit: Duration = .seconds(300), environment extra: [String: String] = [:],
        label: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        if let missing = missingRequirement {
            // Only reached under CI=true (the suite is disabled otherwise).
            Issue.record(
                "integration tests need root and /dev/net/tun; CI must run as root (\(missing))",
                sourceLocation: sourceLocation)
            return
        }
        let script = repositoryRoot.appendingPathComponent("scripts/itest/\(name).sh")
        let name = label ?? name  // the script's name, or the variant's in messages and logs
        guard FileManager.default.fileExists(atPath: script.path) else {
            Issue.record("scenario script \(script.path) does not exist", sourceLocation: sourceLocation)
            return
        }
        let outcome: Outcome
        do {
            outcome = try await execute(script: script, name: name, timeLimit: timeLimit, extra: extra)
        } catch {
            Issue.record("could not start bash for scenario \(name): \(error)", sourceLocation: sourceLocation)
            return
        }
        let seconds = String(format: "%.1f", outcome.seconds)
        if outcome.timedOut || outcome.status != 0 {
            let why = outcome.timedOut ? "exceeded its time limit of \(timeLimit)" : "exited with status \(outcome.status)"
            Issue.record(
                """
                scenario \(name) \(why) after \(seconds) s; full output: \(outcome.logPath)
                ---- last lines ----
                \(outcome.tail)
                """,
                sourceLocation: sourceLocation)
        } else {
            print("scenario \(name) passed in \(seconds) s")
            if ProcessInfo.processInfo.environment["VPND_ITEST_VERBOSE"] == "1" { print(outcome.output) }
            try? FileManager.default.removeItem(atPath: outcome.logPath)
        }
    }

    /// What a finished scenario left behind.
    struct Outcome {
        var status: Int32
        var timedOut: Bool
        var seconds: Double
        var output: String
        var logPath: String

        /// The last lines of the output, where a failing step and the cleanup's diagnostics are.
        var tail: String { output.split(separator: "\n", omittingEmptySubsequences: false).suffix(60).joined(separator: "\n") }
    }

    /// Runs bash on the script with output to a log file, enforcing the time limit.
    static func execute(
        script: URL, name: String, timeLimit: Duration, extra: [String: String] = [:]
    ) async throws -> Outcome {
        let logPath = NSTemporaryDirectory() + "vpnd-itest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        var environment = ProcessInfo.processInfo.environment
        environment["VPND_BIN_DIR"] = binDirectory
        environment["VPND_REPO"] = repositoryRoot.path
        environment.merge(extra) { _, new in new }
        let pid = try spawn(
            arguments: ["/bin/bash", script.path], environment: environment, logPath: logPath)

        let clock = ContinuousClock()
        let start = clock.now
        var timedOut = false
        var terminatedAt: ContinuousClock.Instant?
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped == -1 && errno != EINTR) { break }
            let now = clock.now
            if terminatedAt == nil, now - start > timeLimit {
                timedOut = true
                terminatedAt = now
                kill(-pid, SIGTERM)  // its process group: the script exits through its trap, which kills
                // what is left in its namespaces and deletes them
            } else if let sent = terminatedAt, now - sent > .seconds(30) {
                kill(-pid, SIGKILL)  // its whole process group; namespaces may be left behind
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(output unreadable: \(logPath))"
        // Exit status, or 128 + signal like a shell reports it.
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Outcome(status: code, timedOut: timedOut, seconds: seconds, output: output, logPath: logPath)
    }

    /// Starts a process in its own process group with stdout and stderr to `logPath`.
    ///
    /// Not Foundation's `Process`: its children inherit the test runner's blocked signal mask
    /// (SIGTERM and SIGINT among them), so neither the script's traps nor its helpers' `kill -TERM`
    /// would work. This resets the mask and every signal disposition.
    static func spawn(arguments: [String], environment: [String: String], logPath: String)
        throws -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigfillset(&signals)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw SpawnError(message: "posix_spawn \(arguments[0]): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Why a scenario could not be started.
    struct SpawnError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
