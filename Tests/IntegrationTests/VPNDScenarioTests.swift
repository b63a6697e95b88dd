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

    @Test("wrong server key, wrong PSK, tun against tap, a client the server does not know: no tunnel, both daemons stay up, the logs give a hint, vpnd doctor names the cause on each end")
    func wrongKeys() async { await Scenario.run("wrong-keys", timeLimit: .seconds(120)) }

    @Test("rekeying every 3 s (test timers) during a 60 MB transfer: intact, recent handshake, >= 3 handshakes")
    func rekey() async { await Scenario.run("rekey", timeLimit: .seconds(180)) }

    @Test("kill -9 and restart of the server: the client's tunnel carries traffic within 10 s, UDP and TCP")
    func restart() async { await Scenario.run("restart", timeLimit: .seconds(180)) }

    @Test("vpnd show and show --json list the peer, a recent handshake and counters, vpnd doctor says healthy; a missing interface exits 1 (doctor: 2)")
    func show() async { await Scenario.run("show", timeLimit: .seconds(90)) }
}
