// SPDX-License-Identifier: MIT
import Synchronization
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore
import VPNCrypto
import VPNLinux
import VPNTesting
import Logging

/// A host with the programs a test names, that records every command run and every log line
/// into one journal, and answers each command with the outcome `answer` gives.
final class FakeHost: HostCommands, Sendable {
    struct Run: Equatable {
        var path: String
        var arguments: [String]
        var input: String
    }

    let programs: [String: String]
    let links: Set<String>
    let files: [String: String]
    let answer: @Sendable (Run) -> (Subprocess.Outcome, [String])
    private let journal = Mutex<[String]>([])
    private let runs = Mutex<[Run]>([])

    init(
        programs: [String: String] = ["bash": "/usr/bin/bash"], links: Set<String> = [], files: [String: String] = [:],
        answer: @escaping @Sendable (Run) -> (Subprocess.Outcome, [String]) = { _ in (.exited(0), []) }
    ) {
        self.programs = programs
        self.links = links
        self.files = files
        self.answer = answer
    }

    func find(_ program: String) -> String? { programs[program] }
    var searchPath: String { "/fake/bin" }
    func isSymbolicLink(_ path: String) -> Bool { links.contains(path) }
    func readFile(_ path: String) -> String? { files[path] }
    func run(_ path: String, _ arguments: [String], input: [UInt8], timeLimit: Duration, line: (String) -> Void)
        -> Subprocess.Outcome
    {
        let run = Run(path: path, arguments: arguments, input: String(decoding: input, as: UTF8.self))
        runs.withLock { $0.append(run) }
        let (outcome, output) = answer(run)
        for text in output { line(text) }
        return outcome
    }

    var log: HostLog {
        HostLog(
            info: { text in self.note("info " + text) }, warning: { text in self.note("warning " + text) })
    }
    var lines: [String] { journal.withLock { $0 } }
    var ran: [Run] { runs.withLock { $0 } }
    /// The bash commands run, as given to `-c`.
    var scripts: [String] { ran.filter { $0.arguments.first == "-e" }.map { $0.arguments.last! } }
    func note(_ text: String) { journal.withLock { $0.append(text) } }
}

/// A host step that only notes what happens to it.
final class NotingStep: HostStep {
    let name: String
    let host: FakeHost
    let fails: Bool
    init(_ name: String, host: FakeHost, fails: Bool = false) {
        self.name = name
        self.host = host
        self.fails = fails
    }
    func apply() throws {
        if fails { throw StartupError("\(name) failed") }
        host.note("apply \(name)")
    }
    func undo() { host.note("undo \(name)") }
}

@Suite("Hooks and DNS")
struct HostHooksDNSTests {
    static func text(_ lines: String) -> String {
        var entropy = SeededEntropy(seed: 5)
        let ours = X25519.generatePrivateKey(using: &entropy)
        let peer = X25519.publicKey(for: X25519.generatePrivateKey(using: &entropy))
        return "[Interface]\nPrivateKey = \(KeyEncoding.encode(ours))\n\(lines)\n[Peer]\nPublicKey = \(KeyEncoding.encode(peer))\n"
    }

    static func config(_ lines: String) throws -> Config { try Config.parse(text(lines), fileName: "t.conf") }

    static func host(_ lines: String) -> Config.HostSettings { try! config(lines).interface.host }

    @Test("%i becomes the interface name everywhere, as wg-quick's ${hook//%i/$INTERFACE}")
    func substitution() {
        #expect(HostHooks.substitute("iptables -A FORWARD -i %i -j ACCEPT; echo %i%i", interface: "vpn0")
            == "iptables -A FORWARD -i vpn0 -j ACCEPT; echo vpn0vpn0")
        #expect(HostHooks.substitute("echo %%i %I %", interface: "wg1") == "echo %wg1 %I %")
        #expect(HostHooks.substitute("", interface: "wg1") == "")
        #expect(HostHooks.arguments("false") == ["-e", "-o", "pipefail", "-c", "false"])
    }

    @Test("a failure names the hook, the command's first 80 characters and how it ended")
    func failureLine() {
        let long = String(repeating: "x", count: 100)
        #expect(HostHooks.shown(long) == String(repeating: "x", count: 80) + "...")
        #expect(HostHooks.failure(.postUp, "false", .exited(1))
            == "PostUp command `false` exited with status 1; start-up stopped and everything set up so far was undone (fix the command, or remove the PostUp line)")
        #expect(HostHooks.failure(.preUp, "sleep 100", .timedOut(.seconds(60))).hasPrefix(
            "PreUp command `sleep 100` did not finish within 60 s and was killed; start-up stopped"))
        #expect(HostHooks.failure(.preDown, "x", .signaled(9)) == "PreDown command `x` was killed by signal 9 (SIGKILL); the teardown goes on")
    }

    @Test("up hooks run in file order through bash and stop at the first failure; down hooks log one and go on; output is logged after the hook's name")
    func runOrder() throws {
        let host = FakeHost(answer: { run in
            let script = run.arguments.last!
            return script.hasPrefix("fail") ? (.exited(2), ["oops"]) : (.exited(0), ["out of \(script)"])
        })
        try HostHooks.run(.postUp, ["echo 1 %i", "echo 2"], interface: "vpn0", commands: host, log: host.log)
        #expect(host.ran.map(\.path) == ["/usr/bin/bash", "/usr/bin/bash"])
        #expect(host.scripts == ["echo 1 vpn0", "echo 2"])
        #expect(host.lines == [
            "info PostUp: [#] echo 1 vpn0", "info PostUp: out of echo 1 vpn0", "info PostUp: [#] echo 2", "info PostUp: out of echo 2",
        ])
        let up = FakeHost(answer: host.answer)
        #expect(throws: StartupError.self) {
            try HostHooks.run(.postUp, ["fail one", "echo never"], interface: "vpn0", commands: up, log: up.log)
        }
        #expect(up.scripts == ["fail one"])
        do {
            try HostHooks.run(.preUp, ["fail %i"], interface: "vpn0", commands: up, log: up.log)
        } catch let error as StartupError {
            #expect(error.description.hasPrefix("PreUp command `fail vpn0` exited with status 2; start-up stopped"))
        }
        let down = FakeHost(answer: host.answer)
        try HostHooks.run(.preDown, ["fail one", "echo two"], interface: "vpn0", commands: down, log: down.log)
        #expect(down.scripts == ["fail one", "echo two"])
        #expect(down.lines.contains("warning PreDown command `fail one` exited with status 2; the teardown goes on"))
        #expect(down.lines.contains("info PreDown: oops"))
    }

    @Test("the hook step is last: PostUp after the other steps, PreDown before any undo, PostDown after the interface is gone")
    func stepOrder() throws {
        let fake = FakeHost()
        let host = Self.host("PreUp = echo preup\nPostUp = echo up1\nPostUp = echo up2\nPreDown = echo down\nPostDown = echo gone %i")
        let changes = HostChanges(logger: .init(label: "test"))
        let hooks = try #require(HookStep.make(for: host, interface: "vpn0", commands: fake, log: fake.log))
        try changes.apply([NotingStep("dns", host: fake), NotingStep("routes", host: fake), hooks])
        fake.note("running")
        changes.undoAll()
        fake.note("interface deleted")
        changes.interfaceRemoved()
        changes.interfaceRemoved()  // once only
        let journal = fake.lines.filter { !$0.hasPrefix("info") || $0.contains("[#]") }
        #expect(journal == [
            "apply dns", "apply routes", "info PostUp: [#] echo up1", "info PostUp: [#] echo up2", "running",
            "info PreDown: [#] echo down", "undo routes", "undo dns", "interface deleted", "info PostDown: [#] echo gone vpn0",
        ])
        #expect(!fake.scripts.contains("echo preup"))  // PreUp is not a step: it runs before the interface exists
        #expect(HookStep.make(for: Self.host("PreUp = true"), interface: "vpn0", commands: fake, log: fake.log) == nil)
    }

    @Test("a failing PostUp undoes the steps before it and runs neither PreDown nor PostDown (wg-quick's failed up)")
    func failedPostUp() throws {
        let fake = FakeHost(answer: { run in run.arguments.last == "false" ? (.exited(1), []) : (.exited(0), []) })
        let host = Self.host("PostUp = echo first\nPostUp = false\nPostUp = echo never\nPreDown = echo down\nPostDown = echo gone")
        let changes = HostChanges(logger: .init(label: "test"))
        let hooks = try #require(HookStep.make(for: host, interface: "vpn0", commands: fake, log: fake.log))
        #expect(throws: StartupError.self) { try changes.apply([NotingStep("dns", host: fake), hooks]) }
        changes.interfaceRemoved()
        #expect(fake.scripts == ["echo first", "false"])
        #expect(fake.lines.filter { !$0.hasPrefix("info") } == ["apply dns", "undo dns"])
        changes.undoAll()  // nothing left to undo
        #expect(fake.scripts == ["echo first", "false"])
    }

    @Test("a step that fails before the hooks: the hooks never run")
    func earlierFailure() throws {
        let fake = FakeHost()
        let host = Self.host("PostUp = echo up\nPreDown = echo down\nPostDown = echo gone")
        let changes = HostChanges(logger: .init(label: "test"))
        let hooks = try #require(HookStep.make(for: host, interface: "vpn0", commands: fake, log: fake.log))
        #expect(throws: StartupError.self) {
            try changes.apply([NotingStep("dns", host: fake), NotingStep("routes", host: fake, fails: true), hooks])
        }
        changes.interfaceRemoved()
        #expect(fake.scripts.isEmpty)
        #expect(fake.lines == ["apply dns", "undo dns"])
    }

    @Test("wg-quick's resolvconf interface prefix: the first NAME* line of interface-order (Debian's file gives tun.)")
    func resolvconfPrefix() {
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: nil) == "")
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: "# interface-order\nlo.inet6\nlo.inet*\nlo.@(dnsmasq|pdnsd)\nlo.!(pdns|pdns-recursor)\nlo\ntun*\ntap*\nhso*\nem+([0-9])?(_+([0-9]))*\n") == "tun.")
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: "lo.inet6\nlo\n  tap*  \ntun*\n") == "tap.")
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: "lo\nlo.inet*\n") == "")
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: "lo\nwg-a*\n") == "wg-a.")
        #expect(DNSStep.resolvconfPrefix(interfaceOrder: "*\nlo\n") == "")
    }

    @Test("resolvconf gets wg-quick's lines and arguments; resolvectl its two commands; each undone by one command")
    func commands() {
        let servers = [IPAddress("10.8.0.1")!, IPAddress("fd00::53")!]
        #expect(DNSStep.resolvconfInput(servers: servers, search: ["corp.example", "lab.example"])
            == "nameserver 10.8.0.1\nnameserver fd00::53\nsearch corp.example lab.example\n")
        #expect(DNSStep.resolvconfInput(servers: [servers[0]], search: []) == "nameserver 10.8.0.1\n")
        let rc = DNSStep.Tool.resolvconf(path: "/sbin/resolvconf", prefix: "tun.")
        #expect(DNSStep.applyCommands(rc, interface: "vpn0", servers: servers, search: ["corp.example"])
            == [.init(arguments: ["-a", "tun.vpn0", "-m", "0", "-x"], input: "nameserver 10.8.0.1\nnameserver fd00::53\nsearch corp.example\n")])
        #expect(DNSStep.undoCommand(rc, interface: "vpn0") == .init(arguments: ["-d", "tun.vpn0", "-f"]))
        let ctl = DNSStep.Tool.resolvectl(path: "/usr/bin/resolvectl")
        #expect(DNSStep.applyCommands(ctl, interface: "vpn0", servers: servers, search: ["corp.example"]) == [
            .init(arguments: ["dns", "vpn0", "10.8.0.1", "fd00::53"]), .init(arguments: ["domain", "vpn0", "~.", "corp.example"]),
        ])
        #expect(DNSStep.undoCommand(ctl, interface: "vpn0") == .init(arguments: ["revert", "vpn0"]))
    }

    @Test("resolvconf is preferred, without the prefix when it is a symbolic link; then resolvectl; neither is one line")
    func toolChoice() throws {
        let order = [DNSStep.interfaceOrderFile: "lo\ntun*\n"]
        let both = FakeHost(programs: ["resolvconf": "/sbin/resolvconf", "resolvectl": "/usr/bin/resolvectl"], files: order)
        #expect(try DNSStep.tool(both) == .resolvconf(path: "/sbin/resolvconf", prefix: "tun."))
        let systemd = FakeHost(programs: ["resolvconf": "/sbin/resolvconf"], links: ["/sbin/resolvconf"], files: order)
        #expect(try DNSStep.tool(systemd) == .resolvconf(path: "/sbin/resolvconf", prefix: ""))
        #expect(try DNSStep.tool(FakeHost(programs: ["resolvconf": "/sbin/resolvconf"])) == .resolvconf(path: "/sbin/resolvconf", prefix: ""))
        #expect(try DNSStep.tool(FakeHost(programs: ["resolvectl": "/usr/bin/resolvectl"], files: order)) == .resolvectl(path: "/usr/bin/resolvectl"))
        do {
            _ = try DNSStep.tool(FakeHost(programs: [:]))
            Issue.record("no tool was accepted")
        } catch let error as StartupError {
            #expect(error.description == "DNS needs resolvconf or resolvectl, and neither is on PATH (/fake/bin); install openresolv or systemd-resolved, add the directory that holds one to PATH, or remove the DNS line")
        }
    }

    @Test("the DNS step: resolvconf fed on apply and -d on undo; a failed second resolvectl command reverts the first")
    func dnsStep() throws {
        let fake = FakeHost(programs: ["resolvconf": "/sbin/resolvconf"])
        let host = Self.host("DNS = 10.8.0.1, corp.example")
        let step = try #require(try DNSStep.make(for: host, interface: "vpn0", commands: fake, log: fake.log))
        try step.apply()
        step.undo()
        #expect(fake.ran == [
            .init(path: "/sbin/resolvconf", arguments: ["-a", "vpn0", "-m", "0", "-x"], input: "nameserver 10.8.0.1\nsearch corp.example\n"),
            .init(path: "/sbin/resolvconf", arguments: ["-d", "vpn0", "-f"], input: ""),
        ])
        #expect(try DNSStep.make(for: Self.host(""), interface: "vpn0", commands: fake, log: fake.log) == nil)

        let ctl = FakeHost(programs: ["resolvectl": "/usr/bin/resolvectl"], answer: { run in
            run.arguments.first == "domain" ? (.exited(1), ["Failed to set domain configuration: Link vpn0 not known"]) : (.exited(0), [])
        })
        let failing = try #require(try DNSStep.make(for: host, interface: "vpn0", commands: ctl, log: ctl.log))
        do {
            try failing.apply()
            Issue.record("a failing resolvectl was accepted")
        } catch let error as StartupError {
            #expect(error.description == "DNS: `resolvectl domain vpn0 ~. corp.example` exited with status 1 (it said: Failed to set domain configuration: Link vpn0 not known); fix resolvectl (/usr/bin/resolvectl) or remove the DNS line")
        }
        #expect(ctl.ran.map(\.arguments) == [["dns", "vpn0", "10.8.0.1"], ["domain", "vpn0", "~.", "corp.example"], ["revert", "vpn0"]])
        #expect(ctl.lines.contains("info DNS: resolvectl: Failed to set domain configuration: Link vpn0 not known"))
    }

    @Test("at start: User with DNS, PreDown or PostDown, search domains without a server, DNS without a tool, hooks without bash: one line each")
    func startChecks() throws {
        let nobody = UserAccount(name: "nobody", uid: 65534, gid: 65534, hasPasswdEntry: true)
        let tools = FakeHost(programs: ["bash": "/bin/bash", "resolvconf": "/sbin/resolvconf"])
        func problem(_ lines: String, account: UserAccount? = nil, host: FakeHost = tools) throws -> String? {
            do {
                try HostSetup.checkHooksAndDNS(try Self.config(lines), account: account, commands: host)
                return nil
            } catch let error as StartupError {
                return error.description
            }
        }
        #expect(try problem("DNS = 10.0.0.1\nPreUp = true\nPostUp = true\nPreDown = true\nPostDown = true") == nil)
        #expect(try problem("PreUp = true\nPostUp = true", account: nobody) == nil)
        #expect(try problem("DNS = 10.0.0.1\nPreDown = true\nPostDown = true", account: nobody)
            == "t.conf: DNS, PreDown and PostDown cannot be used with User = nobody (or --user): they act when vpnd stops, after it has switched to nobody, which may not change the host; remove User (vpnd then stays root), or remove them")
        #expect(try problem("PostDown = true", account: nobody)
            == "t.conf: PostDown cannot be used with User = nobody (or --user): it acts when vpnd stops, after it has switched to nobody, which may not change the host; remove User (vpnd then stays root), or remove it")
        #expect(try problem("DNS = corp.example")
            == "t.conf: DNS has search domains (corp.example) but no server address; add the tunnel's DNS server to the DNS line, or remove it")
        #expect(try problem("DNS = 10.0.0.1", host: FakeHost(programs: ["bash": "/bin/bash"]))
            == "t.conf: DNS needs resolvconf or resolvectl, and neither is on PATH (/fake/bin); install openresolv or systemd-resolved, add the directory that holds one to PATH, or remove the DNS line")
        #expect(try problem("PreUp = true\nPostDown = true", host: FakeHost(programs: [:]))
            == "t.conf: PreUp, PostDown run with bash, which is neither on PATH (/fake/bin) nor /bin/bash; install bash, or remove those lines")
    }
}
