// SPDX-License-Identifier: MIT
import Testing

/// Security scenarios: privilege drop and secrets kept out of every output.
///
/// Serialized like the other scenario suites: each one starts daemons on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct SecurityScenarioTests {
    @Test("--user nobody / User = 65534: ids and no capability in /proc, tunnel and vpnd show work, SIGTERM removes interface and routes")
    func privilegeDrop() async { await Scenario.run("privdrop", timeLimit: .seconds(120)) }

    @Test("debug logs, vpnd show and endpoint files of a run with PSK and rekeys contain no private key or PSK in any encoding")
    func noSecretsInOutput() async { await Scenario.run("no-secrets", timeLimit: .seconds(120)) }
}
