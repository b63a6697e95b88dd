// SPDX-License-Identifier: MIT
import Testing

/// Transport = auto: one session over UDP or TCP, moved without a handshake when nftables blocks
/// and unblocks UDP; a WireGuard client of an auto server.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct TransportAgilityScenarioTests {
    @Test("Transport = auto: UDP blocked from the start (up over TCP within 8 s), blocked and unblocked mid-transfer (200 MB intact, no gap over 5 s, no new handshake, back on UDP within 30 s), flapping every 2 s (at most 4 moves), a TCP churn attacker (the client stays on UDP)")
    func transportAuto() async { await Scenario.run("transport-auto", timeLimit: .seconds(300)) }

    @Test("interop: a wireguard-go client (UDP) with a Transport = auto vpnd server: answered over UDP, transfers both ways")
    func interopWireGuardAuto() async { await Scenario.run("interop-wg-auto", timeLimit: .seconds(120)) }
}
