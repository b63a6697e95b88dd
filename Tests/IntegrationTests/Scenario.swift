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
    static func run(
        _ name: String, timeLimit: Duration = .seconds(300), sourceLocation: SourceLocation = #_sourceLocation
    ) async {
        if let missing = missingRequirement {
            // Only reached under CI=true (the suite is disabled otherwise).
            Issue.record(
                "integration tests need root and /dev/net/tun; CI must run as root (\(missing))",
                sourceLocation: sourceLocation)
            return
        }
        let script = repositoryRoot.appendingPathComponent("scripts/itest/\(name).sh")
        guard FileManager.default.fileExists(atPath: script.path) else {
            Issue.record("scenario script \(script.path) does not exist", sourceLocation: sourceLocation)
            return
        }
        let outcome: Outcome
        do {
            outcome = try await execute(script: script, name: name, timeLimit: timeLimit)
        } catch {
            Issue.record("could not start bash for scenario \(name): \(error)", sourceLocation: sourceLocation)
            return
        }
        let seconds = String(format: "%.1f", outcome.seconds)
        if outcome.timedOut || outcome.status != 0 {
            let why = outcome.timedOut ? "timed out after \(timeLimit)" : "exited with status \(outcome.status)"
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
    static func execute(script: URL, name: String, timeLimit: Duration) async throws -> Outcome {
        let logPath = NSTemporaryDirectory() + "vpnd-itest-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: logPath])
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        defer { try? log.close() }

        var environment = ProcessInfo.processInfo.environment
        environment["VPND_BIN_DIR"] = binDirectory
        environment["VPND_REPO"] = repositoryRoot.path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script.path]
        process.currentDirectoryURL = repositoryRoot
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log

        let clock = ContinuousClock()
        let start = clock.now
        try process.run()
        var timedOut = false
        var terminatedAt: ContinuousClock.Instant?
        while process.isRunning {
            let now = clock.now
            if terminatedAt == nil, now - start > timeLimit {
                timedOut = true
                terminatedAt = now
                process.terminate()  // SIGTERM: the script's trap kills its processes and deletes its namespaces
            } else if let sent = terminatedAt, now - sent > .seconds(30) {
                kill(process.processIdentifier, SIGKILL)
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(output unreadable: \(logPath))"
        return Outcome(
            status: process.terminationStatus, timedOut: timedOut, seconds: seconds, output: output, logPath: logPath)
    }
}
