// SPDX-License-Identifier: MIT
import Testing

/// Real networks: a client idle behind NAT, junk that fakes handshake load, a path whose MTU is
/// smaller than the tunnel's and that drops fragments and ICMP.
///
/// Serialized like ``ScenarioTests``: each scenario measures on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct RealNetworkScenarioTests {
    @Test("an idle client behind NAT (5 s UDP timeouts, PersistentKeepalive = 2): reachable from the server after 40 s")
    func natIdle() async { await Scenario.run("nat-idle", timeLimit: .seconds(120)) }

    @Test("150/s of junk initiations (no valid mac1) do not fake load: a client started during them is up within 1 s")
    func junkLoad() async { await Scenario.run("junk-load", timeLimit: .seconds(90)) }

    @Test("a 1280-byte black hole (no fragments, no ICMP) with MTU 1420: probes find 1220, 50 MB each way at >= 70 % of MTU 1220 by hand; with ICMP, frag-needed names 1220")
    func pmtuBlackhole() async { await Scenario.run("pmtu-blackhole", timeLimit: .seconds(240)) }
}
