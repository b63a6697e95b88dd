// SPDX-License-Identifier: MIT
import Testing

/// nftables and forwarding on the host around the tunnel: the kill switch (KillSwitch, AllowLAN,
/// `vpnd down`), Forward and Masquerade, in client, server and net namespaces.
///
/// Serialized like the other scenario suites: each one starts daemons on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct FirewallScenarioTests {
    @Test("KillSwitch on/persistent, AllowLAN, vpnd down: the bypass blocked while the tunnel works and while the server is down, open after a clean stop or vpnd down; TCP at both ends")
    func killSwitch() async { await Scenario.run("kill-switch", timeLimit: .seconds(240)) }

    @Test("Forward + Masquerade: net sees the server's address; sysctls back after stop, vpnd down and a restart after kill -9; leftovers removed at a plain start")
    func forward() async { await Scenario.run("forward", timeLimit: .seconds(120)) }
}
