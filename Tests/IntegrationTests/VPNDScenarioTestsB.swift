// SPDX-License-Identifier: MIT
import Testing

/// vpnd scenarios with more than two ends, bridges, host names, wireguard-go interop and broken configs.
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct VPNDScenarioTestsB {
    @Test("one server, two clients: AllowedIPs routing through the server, a forged inner source is dropped")
    func multiClient() async { await Scenario.run("multi-client", timeLimit: .seconds(120)) }

    @Test("tap with Bridge = br0: a third namespace on the server's bridge is on the client's Ethernet segment")
    func tapBridge() async { await Scenario.run("tap-bridge", timeLimit: .seconds(120)) }

    @Test("Endpoint as a host name from the namespace's /etc/hosts; an unresolvable name exits 1 with one line")
    func hostNameEndpoint() async { await Scenario.run("hostname-endpoint", timeLimit: .seconds(90)) }

    @Test("interop: vpnd client <-> wireguard-go server, ping and 100 MB each way")
    func interopWireGuardServer() async { await Scenario.run("interop-wg-server", timeLimit: .seconds(240)) }

    @Test("interop: wireguard-go client <-> vpnd server, ping and 100 MB each way")
    func interopWireGuardClient() async { await Scenario.run("interop-wg-client", timeLimit: .seconds(240)) }

    @Test("28 broken configs and command lines: exit 1 fast, one stderr line with file:line and a hint, no interface")
    func badConfig() async { await Scenario.run("bad-config", timeLimit: .seconds(120)) }
}
