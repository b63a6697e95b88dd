// SPDX-License-Identifier: MIT
import Foundation
import Testing

/// Integration scenarios: real processes in network namespaces that each script creates and deletes.
///
/// Serialized: the scenarios measure transfers on a 2-core machine, and running them side by side
/// would only make their timeouts flaky (their namespace names never collide either way).
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct ScenarioTests {
    @Test("wireguard-go <-> wireguard-go over veth: ping and 20 MB each way")
    func wgBaseline() async {
        await Scenario.run("wg-baseline", timeLimit: .seconds(120))
    }

    @Test("wireguard-go through impair.py (loss, reordering, duplication, delay) and nftables loss")
    func wgImpaired() async {
        await Scenario.run("wg-impaired", timeLimit: .seconds(240))
    }

    @Test("a failing scenario still removes its namespaces, processes and sockets")
    func failingScenarioCleansUp() async throws {
        if let missing = Scenario.missingRequirement {
            Issue.record("integration tests need root and /dev/net/tun; CI must run as root (\(missing))")
            return
        }
        let script = Scenario.repositoryRoot.appendingPathComponent("scripts/itest/harness-selftest.sh")
        let outcome = try await Scenario.execute(script: script, name: "harness-selftest", timeLimit: .seconds(60))
        defer { try? FileManager.default.removeItem(atPath: outcome.logPath) }
        #expect(!outcome.timedOut)
        #expect(outcome.status == 1, "the self-test scenario must fail at its deliberate step:\n\(outcome.tail)")
        #expect(outcome.output.contains("deliberate failure"), "\(outcome.tail)")
        let line = try #require(
            outcome.output.split(separator: "\n").first { $0.hasPrefix("run id: ") }, "\(outcome.tail)")
        let runID = String(line.dropFirst("run id: ".count))
        let namespaces = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        #expect(namespaces.filter { $0.hasPrefix("vpnd-\(runID)-") }.isEmpty, "namespaces left: \(namespaces)")
        let sockets = (try? FileManager.default.contentsOfDirectory(atPath: "/var/run/wireguard")) ?? []
        #expect(sockets.filter { $0.hasPrefix("v\(runID)") }.isEmpty, "sockets left: \(sockets)")
        let pids = outcome.output.split(separator: "\n").filter { $0.hasPrefix("spawned pid: ") }
            .compactMap { Int32($0.dropFirst("spawned pid: ".count)) }
        #expect(pids.count == 2, "\(outcome.tail)")
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) is still running") }
    }
}
