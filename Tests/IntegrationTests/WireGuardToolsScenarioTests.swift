// SPDX-License-Identifier: MIT
import Testing

/// WireGuard's own tools (Debian's wireguard-tools) driving vpnd through the cross-platform UAPI.
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct WireGuardToolsScenarioTests {
    @Test("wg show/showconf/dump list a vpnd server; wg set adds and removes a client live; syncconf is minimal; hostile set=1 changes nothing")
    func wgUAPI() async { await Scenario.run("wg-uapi", timeLimit: .seconds(180)) }

    @Test("wg-quick up/down with vpnd-wg against a vpnd server: split tunnel, and a full tunnel (fwmark, rules, nftables) to a third namespace; nothing left behind")
    func wgQuick() async { await Scenario.run("wg-quick", timeLimit: .seconds(150)) }

    @Test("two daemons with one Name in two namespaces: both run, the tunnel works, each namespace's vpnd show shows its own; the second says (info) that the wg socket is taken")
    func sameName() async { await Scenario.run("same-name", timeLimit: .seconds(90)) }
}
