// SPDX-License-Identifier: MIT
import Logging
import Synchronization
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
        guard !unapplied.isEmpty else { return }
        throw StartupError(
            "\(config.fileName): \(unapplied.joined(separator: ", ")) \(unapplied.count == 1 ? "is" : "are") not applied by this vpnd yet; remove \(unapplied.count == 1 ? "it" : "them") to start (or run vpnd-wg under wg-quick)")
    }
}

/// One part of the host's set-up around a running interface (DNS, policy routing, the kill
/// switch, forwarding). `apply` either succeeds or leaves nothing of itself behind; `undo` takes
/// back what `apply` did, and logs (never throws) what it could not.
protocol HostStep: AnyObject, Sendable {
    /// For the log: "DNS", "policy routing", "kill switch".
    var name: String { get }
    func apply() throws
    func undo()
}

/// The steps applied so far, undone in reverse order on stop or when a later one fails.
final class HostChanges: Sendable {
    private let applied: Mutex<[any HostStep]> = Mutex([])
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Applies `steps` in order; when one fails, undoes those before it and rethrows.
    func apply(_ steps: [any HostStep]) throws {
        for step in steps {
            do {
                try step.apply()
                applied.withLock { $0.append(step) }
                logger.debug("host set-up: \(step.name) applied")
            } catch {
                undoAll()
                throw error
            }
        }
    }

    /// Undoes every applied step, last first.
    func undoAll() {
        let steps = applied.withLock { steps in
            defer { steps = [] }
            return steps
        }
        for step in steps.reversed() {
            step.undo()
            logger.debug("host set-up: \(step.name) undone")
        }
    }
}

extension HostSetup {
    /// The steps for `host` around interface `name`, in the order they apply. Each part adds its
    /// step here.
    static func steps(for host: Config.HostSettings, interface name: String, plan: LaunchPlan, logger: Logger) throws -> [any HostStep] {
        var steps: [any HostStep] = []
        steps += try FirewallSetup.steps(for: host, interface: name, plan: plan, logger: logger)
        return steps
    }
}
