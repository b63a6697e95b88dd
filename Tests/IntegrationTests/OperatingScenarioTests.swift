// SPDX-License-Identifier: MIT
import Testing

/// Running vpnd as a service: reload, metrics, systemd notify, the packaging (units, pages, install).
///
/// Serialized like ``ScenarioTests``: each scenario measures transfers on a shared 2-core machine.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct OperatingScenarioTests {
    @Test("vpnd reload and SIGHUP apply an edited config live (a client, a route, an address) while a transfer through an unchanged client runs on without a new handshake; a broken file and a Mode change change nothing")
    func reload() async { await Scenario.run("reload", timeLimit: .seconds(150)) }

    @Test("vpnd metrics after traffic parses with the Prometheus client's text parser and agrees with vpnd show --json, with the peers' names as labels; MetricsListen serves it over HTTP and withstands oversized, silent and idle clients")
    func metrics() async { await Scenario.run("metrics", timeLimit: .seconds(90)) }

    @Test("systemd notify to a socket the test listens on: READY=1 with STATUS and MAINPID, WATCHDOG=1, RELOADING=1 then READY=1 around SIGHUP, STOPPING=1; an abstract socket too")
    func notify() async { await Scenario.run("notify", timeLimit: .seconds(90)) }

    @Test("vpnd peer add on a running server: the printed config (vpnd's form, and wg-quick's through a QR code zbarimg decodes) connects a real vpnd client; peer list and remove; refusals leave the file byte for byte; a transfer through an unchanged peer completes with one handshake")
    func peerAdd() async { await Scenario.run("peer-add", timeLimit: .seconds(180)) }

    @Test("50 rounds of reload, peer add and peer remove under checksummed traffic through an unchanged client: no lost byte, one handshake, resident memory grows < 1 MiB, no descriptor leak")
    func operationsSoak() async { await Scenario.run("operations-soak", timeLimit: .seconds(180)) }

    @Test("Packaging: dist/man and dist/completions match what the binaries and docs/config.md give now (gen-man --check); every page renders with man --warnings=all and no warning; bash, fish and zsh load the completions and complete subcommands; scripts/install --destdir stages exactly the expected files and modes and keeps a config in /etc/vpnd; systemd-analyze verify is silent on both unit templates and rates them 5.0 or better")
    func packaging() async { await Scenario.run("packaging", timeLimit: .seconds(120)) }

    @Test("The units' CapabilityBoundingSet and NoNewPrivileges (by setpriv): a server with User = nobody on port 443 and a root client sharing one run directory start, restart and pass traffic; without any one of the kept capabilities the server's start fails with that step's one line")
    func unitCapabilities() async { await Scenario.run("unit-capabilities", timeLimit: .seconds(90)) }
}
