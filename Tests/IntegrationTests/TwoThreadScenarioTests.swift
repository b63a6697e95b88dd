// SPDX-License-Identifier: MIT
import Testing

/// A subset of the scenarios again with every daemon on two packet threads (`--threads 2`): the
/// seals and opens of each batch run on a helper thread and the data-plane thread together, and
/// everything must still arrive intact and in order, rekey, survive an impaired path, and
/// interoperate with wireguard-go. (`Threads = auto` is one thread on a 2-CPU machine, so the
/// default suite runs the one-thread path.) The whole suite on two threads is run by hand
/// (`VPND_EXTRA_FLAGS="--threads 2"`).
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct TwoThreadScenarioTests {
    /// The 100 MB transfers of the data-path scenarios shrink to 30 MB, as in the offload-off
    /// variant; tun-udp checks that both ends report the two threads in `vpnd show --json`.
    static func environment(_ scenario: String) -> [String: String] {
        var environment = ["VPND_EXTRA_FLAGS": "--threads 2", "VPND_ITEST_EXPECT_THREADS": "2"]
        if ["tun-udp", "tun-tcp", "tap-udp"].contains(scenario) { environment["VPND_ITEST_BYTES"] = "30M" }
        return environment
    }

    @Test(
        "two packet threads: tun/UDP, tun/TCP, tap/UDP, rekeying, an impaired path, and both interop directions with wireguard-go",
        arguments: ["tun-udp", "tun-tcp", "tap-udp", "rekey", "impaired", "interop-wg-server", "interop-wg-client"])
    func twoThreads(scenario: String) async {
        await Scenario.run(
            scenario, timeLimit: .seconds(240), environment: Self.environment(scenario), label: "\(scenario)-2-threads")
    }
}
