// SPDX-License-Identifier: MIT
import Testing

/// Faults and hostile input: an impaired path, a small underlay MTU, roaming, TCP resets, a server
/// that is down for a minute, floods of garbage, replays, initiation floods and TCP garbage.
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct FaultScenarioTests {
    @Test("through impair.py (10% loss, 5% reordering, 1% duplication, 20 ms): 10 MB each way intact, offloads on and off")
    func impaired() async { await Scenario.run("impaired", timeLimit: .seconds(240)) }

    @Test("1280-byte underlay: MTU 1220 unfragmented; the default 1420 fragments and still works; path MTU discovery")
    func underlayMTU1280() async { await Scenario.run("underlay-mtu-1280", timeLimit: .seconds(240)) }

    @Test("roaming: the client's underlay address changes mid-transfer; the server follows, transfers intact")
    func roaming() async { await Scenario.run("roaming", timeLimit: .seconds(180)) }

    @Test("TCP transport: the outer connection reset mid-transfer (client side, then server side); vpnd redials, the session goes on with no new handshake, transfers intact")
    func tcpReset() async { await Scenario.run("tcp-reset", timeLimit: .seconds(150)) }

    /// Long: the outage alone is 60 s.
    @Test("server down for 60 s (SIGTERM, restart with no endpoint memory): the client recovers by itself within 15 s")
    func serverDown() async { await Scenario.run("server-down", timeLimit: .seconds(180)) }

    @Test("replayed data messages (captured and injected byte for byte): never delivered twice, counted as replayed")
    func replay() async { await Scenario.run("replay", timeLimit: .seconds(120)) }

    @Test("garbage flood at the UDP port: server up, transfers intact, throughput at least half, drops counted by reason")
    func floodGarbage() async { await Scenario.run("flood-garbage", timeLimit: .seconds(150)) }

    @Test("flood of initiations with a valid mac1: cookie replies engage; a new client still connects within 10 s")
    func cookieFlood() async { await Scenario.run("cookie-flood", timeLimit: .seconds(120)) }

    @Test("garbage on the TCP transport port closes only that connection; the real client's tunnel keeps working")
    func tcpGarbage() async { await Scenario.run("tcp-garbage", timeLimit: .seconds(120)) }

    @Test("3 attackers churning connections to the TCP port for 20 s: transfers intact, the real client never disconnected")
    func tcpChurn() async { await Scenario.run("tcp-churn", timeLimit: .seconds(150)) }
}
