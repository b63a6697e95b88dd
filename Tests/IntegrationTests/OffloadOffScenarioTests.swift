// SPDX-License-Identifier: MIT
import Testing

/// A subset of the scenarios again with every daemon started with `--no-offload` (no TUN
/// TSO/USO, no UDP GSO/GRO, no coalescing): the plain per-packet path that a kernel without the
/// offloads takes must stay correct too. Smaller transfers than the defaults keep CI short; the
/// whole suite with the offloads off is run by hand (`VPND_EXTRA_FLAGS=--no-offload`).
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct OffloadOffScenarioTests {
    /// The 100 MB transfers of the data-path scenarios shrink to 30 MB; the others keep theirs
    /// (rekey needs its 60 MB to span three rekeys, impaired uses 10 MB already).
    static func environment(_ scenario: String) -> [String: String] {
        var environment = ["VPND_EXTRA_FLAGS": "--no-offload"]
        if ["tun-udp", "tun-tcp", "tap-udp"].contains(scenario) { environment["VPND_ITEST_BYTES"] = "30M" }
        return environment
    }

    @Test(
        "offloads off: tun/UDP, tun/TCP, tap/UDP, rekeying, an impaired path, and both interop directions with wireguard-go",
        arguments: ["tun-udp", "tun-tcp", "tap-udp", "rekey", "impaired", "interop-wg-server", "interop-wg-client"])
    func offloadsOff(scenario: String) async {
        await Scenario.run(
            scenario, timeLimit: .seconds(240), environment: Self.environment(scenario), label: "\(scenario)-no-offload")
    }
}
