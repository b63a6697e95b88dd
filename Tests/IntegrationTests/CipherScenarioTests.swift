// SPDX-License-Identifier: MIT
import Testing

/// A subset of the scenarios with `Cipher = aes256gcm` on both ends (`VPND_ITEST_CIPHER`, which
/// every config made by `vpnd_config` takes): AES-256-GCM sessions carry tun and tap traffic
/// intact, rekey under load, and both ends report the cipher in `vpnd show --json`. The mismatch
/// case (an AES-256-GCM end against a ChaCha20-Poly1305 one) is case e of wrong-keys.
@Suite(
    .serialized,
    .enabled(if: Scenario.shouldRun, "integration tests need root and /dev/net/tun (with CI=true they fail instead)"))
struct CipherScenarioTests {
    @Test(
        "Cipher = aes256gcm: tun/UDP, tun/TCP and tap/UDP (30 MB each way) and rekeying during a transfer",
        arguments: ["tun-udp", "tun-tcp", "tap-udp", "rekey"])
    func aes256gcm(scenario: String) async {
        var environment = ["VPND_ITEST_CIPHER": "aes256gcm"]
        if scenario != "rekey" { environment["VPND_ITEST_BYTES"] = "30M" }
        await Scenario.run(scenario, timeLimit: .seconds(240), environment: environment, label: "\(scenario)-aes256gcm")
    }
}
