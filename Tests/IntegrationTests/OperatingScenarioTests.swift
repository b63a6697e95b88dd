// SPDX-License-Identifier: MIT
import Testing

/// Running vpnd as a service: reload, metrics.
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct OperatingScenarioTests {
    @Test("vpnd reload and SIGHUP apply an edited config live (a client, a route, an address) while a transfer through an unchanged client runs on without a new handshake; a broken file and a Mode change change nothing")
    func reload() async { await Scenario.run("reload", timeLimit: .seconds(150)) }

    @Test("vpnd metrics after traffic parses with the Prometheus client's text parser and agrees with vpnd show --json")
    func metrics() async { await Scenario.run("metrics", timeLimit: .seconds(90)) }
}
