// SPDX-License-Identifier: MIT
import Testing

/// vpnd <-> vpnd scenarios: data paths, wrong keys, rekeying, restarts and `vpnd show`.
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct VPNDScenarioTests {
    @Test("vpnd <-> vpnd, tun over UDP: ping both ways, 100 MB each way")
    func tunUDP() async { await Scenario.run("tun-udp", timeLimit: .seconds(300)) }

    @Test("vpnd <-> vpnd, tun over TCP: ping both ways, 100 MB each way")
    func tunTCP() async { await Scenario.run("tun-tcp", timeLimit: .seconds(300)) }

    @Test("vpnd <-> vpnd, tap over UDP: one Ethernet segment (ARP, ethertype 0x88b5 frames), 100 MB each way")
    func tapUDP() async { await Scenario.run("tap-udp", timeLimit: .seconds(300)) }
}
