// SPDX-License-Identifier: MIT
import VPNCore
import VPNLinux

/// wg-quick's `PreUp`, `PostUp`, `PreDown` and `PostDown`: each command runs with bash as
/// wg-quick runs it (`-e -o pipefail`, as wg-quick's own `set -e -o pipefail` applies to its
/// hooks), `%i` replaced by the interface name, its output logged line by line after the hook's
/// name, the commands of one kind in file order, each within ``timeLimit``.
///
/// PreUp runs before the interface exists; PostUp last, after the interface and every other
/// host step (``HookStep``); PreDown first when vpnd stops, before anything is undone; PostDown
/// after the interface is gone. A failing PreUp or PostUp stops start-up: everything done so far
/// is undone, and PreDown and PostDown do not run (as wg-quick, whose failed `up` removes the
/// interface and runs no down hook). A failing PreDown or PostDown is logged and the teardown
/// goes on.
enum HostHooks {
    enum Kind: String, Sendable {
        case preUp = "PreUp", postUp = "PostUp", preDown = "PreDown", postDown = "PostDown"
    }

    /// How long one command may run before it and its process group are killed.
    static let timeLimit: Duration = .seconds(60)

    /// The command with every `%i` replaced by the interface name (wg-quick's one substitution).
    static func substitute(_ command: String, interface: String) -> String {
        var result = ""
        var rest = Substring(command)
        while let range = rest.firstRange(of: "%i") {
            result += rest[..<range.lowerBound]
            result += interface
            rest = rest[range.upperBound...]
        }
        return result + rest
    }

    /// bash's arguments for one command.
    static func arguments(_ command: String) -> [String] { ["-e", "-o", "pipefail", "-c", command] }

    /// The command as messages show it: its first 80 characters.
    static func shown(_ command: String) -> String {
        command.count <= 80 ? command : String(command.prefix(80)) + "..."
    }

    /// The one line for a failed command.
    static func failure(_ kind: Kind, _ command: String, _ outcome: Subprocess.Outcome) -> String {
        let what = "\(kind.rawValue) command `\(shown(command))` \(outcome)"
        switch kind {
        case .preUp, .postUp:
            return "\(what); start-up stopped and everything set up so far was undone (fix the command, or remove the \(kind.rawValue) line)"
        case .preDown, .postDown:
            return "\(what); the teardown goes on"
        }
    }

    /// bash as the hooks run it: from PATH, else /bin/bash; nil when there is none.
    static func shell(_ commands: any HostCommands) -> String? {
        commands.find("bash") ?? commands.find("/bin/bash")
    }

    /// Runs `list` (the `kind` commands, in file order) for interface `interface`. PreUp and PostUp
    /// stop at the first failure and throw its line; PreDown and PostDown log a failure and run
    /// the rest.
    static func run(
        _ kind: Kind, _ list: [String], interface: String, commands: any HostCommands, log: HostLog
    ) throws {
        guard !list.isEmpty else { return }
        guard let bash = shell(commands) else {
            let line = "\(kind.rawValue) needs bash, which is neither on PATH (\(commands.searchPath)) nor /bin/bash; install bash, or remove the \(kind.rawValue) lines"
            if kind == .preUp || kind == .postUp { throw StartupError(line) }
            log.warning(line)
            return
        }
        for original in list {
            let command = substitute(original, interface: interface)
            log.info("\(kind.rawValue): [#] \(command)")
            let outcome = commands.run(bash, arguments(command), input: [], timeLimit: timeLimit) { output in
                log.info("\(kind.rawValue): \(output)")
            }
            guard outcome.succeeded else {
                let line = failure(kind, command, outcome)
                if kind == .preUp || kind == .postUp { throw StartupError(line) }
                log.warning(line)
                continue
            }
        }
    }
}

/// The hooks around a running interface, as the last host step: applying it runs PostUp (after
/// everything else is up), undoing it runs PreDown (first, before anything else is undone), and
/// PostDown runs once the interface is gone. PreDown and PostDown run only after a PostUp that
/// succeeded (or when there is none): a start-up that failed earlier runs neither.
final class HookStep: HostStep {
    let name = "PostUp/PreDown/PostDown"
    private let postUp: [String]
    private let preDown: [String]
    private let postDown: [String]
    private let interface: String
    private let commands: any HostCommands
    private let log: HostLog

    init(postUp: [String], preDown: [String], postDown: [String], interface: String, commands: any HostCommands, log: HostLog) {
        self.postUp = postUp
        self.preDown = preDown
        self.postDown = postDown
        self.interface = interface
        self.commands = commands
        self.log = log
    }

    /// The step for `host`, nil when it has none of these hooks.
    static func make(for host: Config.HostSettings, interface: String, commands: any HostCommands, log: HostLog) -> HookStep? {
        guard !host.postUp.isEmpty || !host.preDown.isEmpty || !host.postDown.isEmpty else { return nil }
        return HookStep(
            postUp: host.postUp, preDown: host.preDown, postDown: host.postDown, interface: interface, commands: commands,
            log: log)
    }

    func apply() throws {
        try HostHooks.run(.postUp, postUp, interface: interface, commands: commands, log: log)
    }

    func undo() {
        try? HostHooks.run(.preDown, preDown, interface: interface, commands: commands, log: log)
    }

    func afterInterfaceRemoved() {
        try? HostHooks.run(.postDown, postDown, interface: interface, commands: commands, log: log)
    }
}
