// SPDX-License-Identifier: MIT
import Testing

/// The host around the interface, as wg-quick sets it up (issue 14): hooks and DNS here; the full
/// tunnel and the firewall have suites of their own (FullTunnelScenarioTests, FirewallScenarioTests).
///
/// Serialized like ``ScenarioTests``: the scenarios share a 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct HostSetupScenarioTests {
    @Test("PreUp, PostUp, PreDown, PostDown run in wg-quick's order with %i, their output in the log; a failing or hanging (60 s) PostUp and a failing PreUp stop start-up with one line and leave nothing (DNS withdrawn, no PreDown/PostDown); DNS through a stub resolvconf (wg-quick's -a/-d, the tun. prefix of interface-order) and a stub resolvectl found on vpnd's PATH, neither is one line; User refuses PreDown and runs PreUp/PostUp as root; the host's /etc/resolv.conf untouched")
    func hooksDNS() async { await Scenario.run("hooks-dns", timeLimit: .seconds(150)) }
}
