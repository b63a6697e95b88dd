// SPDX-License-Identifier: MIT
import Testing

/// The full tunnel (Table, FwMark, wg-quick's policy routing) in namespaces client, server and net.
///
/// Serialized like the other scenario suites: each one starts daemons on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct FullTunnelScenarioTests {
    @Test("AllowedIPs = 0.0.0.0/0 over UDP, TCP (User = nobody) and Transport = auto: through the server to net, underlay marked, IPv6 blocked, rules and routes as before after stop and after kill -9 + restart; Table = N / off, FwMark")
    func fullTunnel() async { await Scenario.run("full-tunnel", timeLimit: .seconds(150)) }
}
