// SPDX-License-Identifier: MIT
import VPNCore

/// The host around the interface, as wg-quick sets it up: hooks, DNS, policy routing for a full
/// tunnel, the kill switch, forwarding. Each part is applied after the interface is up and undone,
/// in reverse order, when vpnd stops or a later part fails.
enum HostSetup {
    /// The host-side keys this build parses but does not apply yet: refused at start with one
    /// line naming them, so that none is silently ignored.
    static func refuseUnapplied(_ config: Config) throws {
        let host = config.interface.host
        var unapplied: [String] = []
        if !host.dnsServers.isEmpty || !host.dnsSearch.isEmpty { unapplied.append("DNS") }
        if host.table != .auto { unapplied.append("Table") }
        if host.fwMark != 0 { unapplied.append("FwMark") }
        if !host.preUp.isEmpty { unapplied.append("PreUp") }
        if !host.postUp.isEmpty { unapplied.append("PostUp") }
        if !host.preDown.isEmpty { unapplied.append("PreDown") }
        if !host.postDown.isEmpty { unapplied.append("PostDown") }
        if host.killSwitch != .off { unapplied.append("KillSwitch") }
        if host.forward { unapplied.append("Forward") }
        if host.masquerade != nil { unapplied.append("Masquerade") }
        guard !unapplied.isEmpty else { return }
        throw StartupError(
            "\(config.fileName): \(unapplied.joined(separator: ", ")) \(unapplied.count == 1 ? "is" : "are") not applied by this vpnd yet; remove \(unapplied.count == 1 ? "it" : "them") to start (or run vpnd-wg under wg-quick)")
    }
}
