// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNCore
import VPNLinux

/// The host around the interface, as wg-quick sets it up: hooks, DNS, policy routing for a full
/// tunnel, the kill switch, forwarding. Each part is applied after the interface is up and undone,
/// in reverse order, when vpnd stops or a later part fails.
enum HostSetup {
    /// What the hooks and `DNS` need of this host and of the other keys, checked at start before
    /// anything exists (one line each): bash for hooks; resolvconf or resolvectl for DNS, which
    /// needs a server; and no `User` with DNS, PreDown or PostDown, since those run when vpnd
    /// stops, after it gave up the privileges to change the host.
    static func checkHooksAndDNS(
        _ config: Config, account: UserAccount?, commands: any HostCommands = SystemHostCommands()
    ) throws {
        let host = config.interface.host
        let file = config.fileName
        if let account {
            var late: [String] = []
            if !host.dnsServers.isEmpty || !host.dnsSearch.isEmpty { late.append("DNS") }
            if !host.preDown.isEmpty { late.append("PreDown") }
            if !host.postDown.isEmpty { late.append("PostDown") }
            if !late.isEmpty {
                let names = late.count == 1 ? late[0] : late.dropLast().joined(separator: ", ") + " and " + late.last!
                throw StartupError(
                    "\(file): \(names) cannot be used with User = \(account.name) (or --user): \(late.count == 1 ? "it acts" : "they act") when vpnd stops, after it has switched to \(account.name), which may not change the host; remove User (vpnd then stays root), or remove \(late.count == 1 ? "it" : "them")")
            }
        }
        if host.dnsServers.isEmpty && !host.dnsSearch.isEmpty {
            throw StartupError(
                "\(file): DNS has search domains (\(host.dnsSearch.joined(separator: ", "))) but no server address; add the tunnel's DNS server to the DNS line, or remove it")
        }
        if !host.dnsServers.isEmpty {
            do { _ = try DNSStep.tool(commands) } catch let error as StartupError { throw StartupError("\(file): \(error.description)") }
        }
        let hooks: [(String, [String])] = [
            ("PreUp", host.preUp), ("PostUp", host.postUp), ("PreDown", host.preDown), ("PostDown", host.postDown),
        ]
        let used = hooks.filter { !$0.1.isEmpty }.map(\.0)
        if !used.isEmpty && HostHooks.shell(commands) == nil {
            throw StartupError(
                "\(file): \(used.joined(separator: ", ")) \(used.count == 1 ? "runs" : "run") with bash, which is neither on PATH (\(commands.searchPath)) nor /bin/bash; install bash, or remove those lines")
        }
    }

    /// PreUp, before the interface is created (the first failure throws its one line).
    static func runPreUp(_ host: Config.HostSettings, interface name: String, logger: Logger) throws {
        try HostHooks.run(.preUp, host.preUp, interface: name, commands: SystemHostCommands(), log: HostLog(logger))
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
    /// What is left once the interface is gone, after every step's `undo` (PostDown); most steps
    /// have nothing.
    func afterInterfaceRemoved()
}

extension HostStep {
    func afterInterfaceRemoved() {}
}

/// The steps applied so far, undone in reverse order on stop or when a later one fails.
final class HostChanges: Sendable {
    private let applied: Mutex<[any HostStep]> = Mutex([])
    /// Undone, waiting for ``interfaceRemoved()``, in the order they were undone.
    private let undone: Mutex<[any HostStep]> = Mutex([])
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
        undone.withLock { $0 += steps.reversed() }
    }

    /// Once the interface is deleted: the undone steps' ``HostStep/afterInterfaceRemoved()``,
    /// in the order they were undone.
    func interfaceRemoved() {
        let steps = undone.withLock { steps in
            defer { steps = [] }
            return steps
        }
        for step in steps { step.afterInterfaceRemoved() }
    }
}

extension HostSetup {
    /// The steps for `host` around interface `name`, in the order they apply. Each part adds its
    /// step here.
    static func steps(for host: Config.HostSettings, interface name: String, plan: LaunchPlan, logger: Logger) throws -> [any HostStep] {
        let commands = SystemHostCommands(), log = HostLog(logger)
        var steps: [(any HostStep)?] = []
        steps += try FullTunnelStep.steps(for: plan, interface: name, logger: logger).map { $0 }
        steps += try FirewallSetup.steps(for: host, interface: name, plan: plan, logger: logger).map { $0 }
        steps.append(try DNSStep.make(for: host, interface: name, commands: commands, log: log))
        // Last: PostUp after everything else is up; PreDown first when undoing.
        steps.append(HookStep.make(for: host, interface: name, commands: commands, log: log))
        return steps.compactMap { $0 }
    }
}
