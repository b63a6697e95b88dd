// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

extension Config {
    /// Parses a configuration file's text: WireGuard's INI format, a superset of `wg-quick`'s.
    ///
    /// Section and key names are case-insensitive, values are trimmed, `#` starts a comment
    /// (whole line or trailing), blank lines are ignored. Unknown sections and keys, keys
    /// outside a section, and a single-valued key given twice are errors. No file is read:
    /// `PrivateKeyFile` and `PresharedKeyFile` stay paths.
    ///
    /// - Parameters:
    ///   - text: the file's contents.
    ///   - fileName: the name to show in messages, e.g. `server.conf`.
    /// - Returns: the model, with defaults filled in and AllowedIPs masked.
    /// - Throws: ``ConfigError`` for the first problem found, with its line when it has one.
    public static func parse(_ text: String, fileName: String) throws(ConfigError) -> Config {
        var parser = ConfigParser(fileName: fileName)
        return try parser.parse(text)
    }
}

/// The line-by-line reader behind ``Config/parse(_:fileName:)``.
struct ConfigParser {
    /// Every key vpnd knows, spelled as documented.
    enum Key: String, CaseIterable {
        case privateKey = "PrivateKey", privateKeyFile = "PrivateKeyFile", address = "Address"
        case listenPort = "ListenPort", mtu = "MTU", mode = "Mode", transport = "Transport", name = "Name"
        case bridge = "Bridge", user = "User", mssClamp = "MSSClamp"
        case pathMTUDiscovery = "PathMTUDiscovery", keepNetAdmin = "KeepNetAdmin"
        case dns = "DNS", table = "Table", fwMark = "FwMark", preUp = "PreUp", postUp = "PostUp"
        case preDown = "PreDown", postDown = "PostDown", saveConfig = "SaveConfig", killSwitch = "KillSwitch"
        case allowLAN = "AllowLAN", forward = "Forward", masquerade = "Masquerade"
        case metricsListen = "MetricsListen", cipher = "Cipher", threads = "Threads"
        case publicKey = "PublicKey", presharedKey = "PresharedKey", presharedKeyFile = "PresharedKeyFile"
        case allowedIPs = "AllowedIPs", endpoint = "Endpoint", persistentKeepalive = "PersistentKeepalive"

        var isRepeatable: Bool {
            switch self {
            case .address, .allowedIPs, .dns, .preUp, .postUp, .preDown, .postDown: return true
            default: return false
            }
        }

        /// The host-side keys (``Config/HostSettings``).
        static let host: [Key] = [
            .dns, .table, .fwMark, .preUp, .postUp, .preDown, .postDown, .saveConfig, .killSwitch, .allowLAN, .forward,
            .masquerade,
        ]
    }

    enum Section: String {
        case interface = "Interface", peer = "Peer"

        var keys: [Key] {
            switch self {
            case .interface:
                return [
                    .privateKey, .privateKeyFile, .address, .listenPort, .mtu, .mode, .transport, .name, .bridge, .user,
                    .mssClamp, .pathMTUDiscovery, .keepNetAdmin, .metricsListen, .cipher, .threads,
                ] + Key.host
            case .peer:
                return [.publicKey, .presharedKey, .presharedKeyFile, .allowedIPs, .endpoint, .persistentKeepalive]
            }
        }
    }

    struct InterfaceDraft {
        var line: Int
        var seen: [Key: Int] = [:]
        var privateKey: Config.KeySource?
        var addresses: [IPPrefix] = []
        var listenPort: UInt16?
        var mtu = Config.defaultMTU
        var mode = Config.Mode.tun
        var transport = Config.Transport.udp
        var name = Config.defaultName
        var bridge: String?
        var user: String?
        var mssClamp = Config.MSSClampSetting.auto
        var pathMTUDiscovery = true
        var keepNetAdmin = true
        var metricsListen: Endpoint?
        var cipher = TransportCipher.chaCha20Poly1305
        var threads: Int?
        var host = Config.HostSettings()
    }

    struct PeerDraft {
        var line: Int
        var seen: [Key: Int] = [:]
        var publicKey: Bytes32?
        var presharedKey: Config.KeySource?
        var allowedIPs: [(prefix: IPPrefix, line: Int)] = []
        var endpoint: EndpointSpec?
        var persistentKeepalive: UInt16?
        var name: String?
    }

    let fileName: String
    var interface: InterfaceDraft?
    var peers: [PeerDraft] = []
    var section: Section?

    init(fileName: String) { self.fileName = fileName }

    func error(_ line: Int, _ message: String) -> ConfigError {
        ConfigError(fileName: fileName, line: line, message: message)
    }

    mutating func parse(_ text: String) throws(ConfigError) -> Config {
        var number = 0
        // "\r\n" is one Character in Swift, so CRLF files need it named.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            var line = Substring(rawLine)
            if number == 1 && line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            var comment: Substring?
            if let hash = line.firstIndex(of: "#") {
                comment = Self.trimmed(line[line.index(after: hash)...])
                line = line[..<hash]
            }
            line = Self.trimmed(line)
            if line.isEmpty {
                if let comment { notePeerName(comment) }
                continue
            }
            if line.first == "[" {
                try startSection(line, at: number)
                if let comment { notePeerName(comment) }
            } else {
                try readAssignment(line, at: number)
            }
        }
        return try finish()
    }

    /// A peer's name is the comment on its `[Peer]` line or the first comment line after it,
    /// before any key (`vpnd peer add` writes `# alice` there). Leading `#`s and a `Name =`
    /// prefix are dropped; metadata only, never part of the tunnel's configuration.
    mutating func notePeerName(_ comment: Substring) {
        guard section == .peer, peers[peers.count - 1].seen.isEmpty, peers[peers.count - 1].name == nil else { return }
        var text = comment
        while text.first == "#" { text = Self.trimmed(text.dropFirst()) }
        if let equals = text.firstIndex(of: "="), Self.trimmed(text[..<equals]).lowercased() == "name" {
            text = Self.trimmed(text[text.index(after: equals)...])
        }
        let printable = text.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F }
        if !text.isEmpty && printable && text.utf8.count <= 64 { peers[peers.count - 1].name = String(text) }
    }

    static func trimmed(_ text: Substring) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" }
        var text = text
        while let first = text.first, isSpace(first) { text = text.dropFirst() }
        while let last = text.last, isSpace(last) { text = text.dropLast() }
        return text
    }

    mutating func startSection(_ line: Substring, at number: Int) throws(ConfigError) {
        guard line.last == "]" else {
            throw error(number, "section header \"\(line)\" has no closing \"]\"")
        }
        let name = String(Self.trimmed(line.dropFirst().dropLast()))
        switch name.lowercased() {
        case "interface":
            if let first = interface {
                throw error(number, "[Interface] appears twice (first at line \(first.line))")
            }
            interface = InterfaceDraft(line: number)
            section = .interface
        case "peer":
            peers.append(PeerDraft(line: number))
            section = .peer
        default:
            var message = "unknown section [\(name)]"
            if let guess = Self.closest(to: name, among: ["Interface", "Peer"]) { message += " (did you mean [\(guess)]?)" }
            throw error(number, message + "; sections are [Interface] and [Peer]")
        }
    }

    mutating func readAssignment(_ line: Substring, at number: Int) throws(ConfigError) {
        guard let equals = line.firstIndex(of: "=") else {
            throw error(number, "expected \"Key = Value\" or \"[Section]\"")
        }
        let keyText = String(Self.trimmed(line[..<equals]))
        let value = String(Self.trimmed(line[line.index(after: equals)...]))
        guard !keyText.isEmpty else { throw error(number, "a line starts with \"=\" (expected \"Key = Value\")") }
        guard let section else {
            throw error(number, "\"\(keyText)\" comes before any section; start the file with [Interface]")
        }
        let key = try resolve(keyText, in: section, at: number)
        guard !value.isEmpty else { throw error(number, "\(key.rawValue) has no value") }

        let seen = section == .interface ? interface!.seen : peers[peers.count - 1].seen
        if !key.isRepeatable, let first = seen[key] {
            throw error(number, "\(key.rawValue) is set twice (first at line \(first))")
        }
        let exclusive: [Key: Key] = [
            .privateKey: .privateKeyFile, .privateKeyFile: .privateKey,
            .presharedKey: .presharedKeyFile, .presharedKeyFile: .presharedKey,
        ]
        if let other = exclusive[key], let otherLine = seen[other] {
            throw error(number, "\(key.rawValue) and \(other.rawValue) (line \(otherLine)) are both set; keep one")
        }
        do throws(ValueProblem) {
            // The draft is taken out, changed and put back: passing `&peers[last]` to a method of
            // `self` made Swift copy the whole array on every line (quadratic in the peer count).
            if section == .interface {
                var draft = interface.take()!
                defer { interface = draft }
                try apply(key, value, to: &draft, at: number)
                draft.seen[key] = draft.seen[key] ?? number
            } else {
                var draft = peers.removeLast()
                defer { peers.append(draft) }
                try apply(key, value, to: &draft, at: number)
                draft.seen[key] = draft.seen[key] ?? number
            }
        } catch let problem {
            throw error(number, "\(key.rawValue) \(problem.message)")
        }
    }

    func resolve(_ text: String, in section: Section, at number: Int) throws(ConfigError) -> Key {
        let lowered = text.lowercased()
        if let key = section.keys.first(where: { $0.rawValue.lowercased() == lowered }) { return key }
        if let key = Key.allCases.first(where: { $0.rawValue.lowercased() == lowered }) {
            let home: Section = section == .interface ? .peer : .interface
            throw error(number, "\(key.rawValue) belongs in [\(home.rawValue)], not in [\(section.rawValue)]")
        }
        var message = "unknown key \"\(text)\" in [\(section.rawValue)]"
        if let guess = Self.closest(to: text, among: section.keys.map(\.rawValue)) {
            message += " (did you mean \"\(guess)\"?)"
        }
        throw error(number, message)
    }

    func apply(_ key: Key, _ value: String, to draft: inout InterfaceDraft, at number: Int) throws(ValueProblem) {
        switch key {
        case .privateKey:
            draft.privateKey = .key(try ConfigValues.secretKey(value))
        case .privateKeyFile:
            draft.privateKey = .file(value)
        case .address:
            for item in try Self.list(value) { draft.addresses.append(try ConfigValues.prefix(item)) }
        case .listenPort:
            draft.listenPort = try ConfigValues.port(value)
        case .mtu:
            draft.mtu = try ConfigValues.mtu(value)
        case .mode:
            draft.mode = try ConfigValues.mode(value)
        case .cipher:
            draft.cipher = try ConfigValues.cipher(value)
        case .threads:
            draft.threads = try ConfigValues.threads(value)
        case .transport:
            draft.transport = try ConfigValues.transport(value)
        case .name:
            draft.name = try ConfigValues.interfaceName(value)
        case .bridge:
            draft.bridge = try ConfigValues.interfaceName(value)
        case .user:
            draft.user = try ConfigValues.userName(value)
        case .mssClamp:
            draft.mssClamp = try ConfigValues.mssClamp(value)
        case .pathMTUDiscovery:
            draft.pathMTUDiscovery = try ConfigValues.onOff(value)
        case .keepNetAdmin:
            draft.keepNetAdmin = try ConfigValues.onOff(value)
        case .metricsListen:
            draft.metricsListen = try ConfigValues.listenAddress(value)
        case .dns:
            for item in try Self.list(value) {
                let entry = try ConfigValues.dnsEntry(String(item))
                if let server = entry.server { draft.host.dnsServers.append(server) }
                if let domain = entry.domain { draft.host.dnsSearch.append(domain) }
            }
        case .table:
            draft.host.table = try ConfigValues.routeTable(value)
        case .fwMark:
            draft.host.fwMark = try ConfigValues.firewallMark(value)
        case .preUp: draft.host.preUp.append(value)
        case .postUp: draft.host.postUp.append(value)
        case .preDown: draft.host.preDown.append(value)
        case .postDown: draft.host.postDown.append(value)
        case .saveConfig:
            try ConfigValues.saveConfig(value)
        case .killSwitch:
            draft.host.killSwitch = try ConfigValues.killSwitch(value)
        case .allowLAN:
            draft.host.allowLAN = try ConfigValues.onOff(value)
        case .forward:
            draft.host.forward = try ConfigValues.onOff(value)
        case .masquerade:
            draft.host.masquerade = try ConfigValues.interfaceName(value)
        case .publicKey, .presharedKey, .presharedKeyFile, .allowedIPs, .endpoint, .persistentKeepalive:
            preconditionFailure("\(key) is not an [Interface] key")
        }
    }

    func apply(_ key: Key, _ value: String, to draft: inout PeerDraft, at number: Int) throws(ValueProblem) {
        switch key {
        case .publicKey:
            draft.publicKey = try ConfigValues.publicKey(value)
        case .presharedKey:
            draft.presharedKey = .key(try ConfigValues.secretKey(value))
        case .presharedKeyFile:
            draft.presharedKey = .file(value)
        case .allowedIPs:
            for item in try Self.list(value) {
                draft.allowedIPs.append((try ConfigValues.prefix(item).masked, number))
            }
        case .endpoint:
            draft.endpoint = try EndpointSpec.parse(value)
        case .persistentKeepalive:
            draft.persistentKeepalive = try ConfigValues.keepalive(value)
        case .privateKey, .privateKeyFile, .address, .listenPort, .mtu, .mode, .transport, .name, .bridge, .user,
            .mssClamp, .pathMTUDiscovery, .keepNetAdmin, .metricsListen, .cipher, .threads, .dns, .table, .fwMark, .preUp, .postUp,
            .preDown,
            .postDown, .saveConfig, .killSwitch, .allowLAN, .forward, .masquerade:
            preconditionFailure("\(key) is not a [Peer] key")
        }
    }

    /// The trimmed items of a comma-separated list; an empty item is an error.
    static func list(_ value: String) throws(ValueProblem) -> [String] {
        var items: [String] = []
        for item in value.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmedItem = trimmed(item)
            guard !trimmedItem.isEmpty else { throw ValueProblem("has an empty entry in \"\(value)\" (check the commas)") }
            items.append(String(trimmedItem))
        }
        return items
    }

    /// Checks that span sections, then builds the model.
    func finish() throws(ConfigError) -> Config {
        guard let draft = interface else {
            throw error(0, "no [Interface] section; the file must have one, with PrivateKey or PrivateKeyFile")
        }
        guard let privateKey = draft.privateKey else {
            throw error(0, "[Interface] needs PrivateKey or PrivateKeyFile")
        }
        if draft.bridge != nil && draft.mode != .tap {
            throw error(draft.seen[.bridge]!, "Bridge is only valid with Mode = tap")
        }
        if draft.mtu < Config.minimumIPv6MTU, let v6 = draft.addresses.first(where: { !$0.address.isIPv4 }) {
            throw error(
                draft.seen[.mtu] ?? 0,
                "MTU \(draft.mtu) is below \(Config.minimumIPv6MTU), the minimum for IPv6, and Address \(v6) is IPv6")
        }
        if draft.transport.carriesTCP && draft.mtu > Config.maximumTCPMTU {
            throw error(
                draft.seen[.mtu] ?? 0,
                "MTU \(draft.mtu) is too large for Transport = \(draft.transport.rawValue) (at most \(Config.maximumTCPMTU): a TCP frame "
                    + "holds 65535 bytes); lower MTU or use Transport = udp")
        }
        guard !peers.isEmpty else {
            throw error(0, "no [Peer] section; add one for the remote host, with its PublicKey")
        }
        if draft.host.allowLAN && draft.host.killSwitch == .off {
            throw error(draft.seen[.allowLAN]!, "AllowLAN needs KillSwitch = on or persistent (without a kill switch the LAN is reachable anyway)")
        }
        if draft.host.masquerade != nil && !draft.host.forward {
            throw error(draft.seen[.masquerade]!, "Masquerade needs Forward = on (there is nothing to NAT without forwarding)")
        }
        if draft.mode == .tap && peers.count > 1 {
            throw error(peers[1].line, "tap mode allows exactly one [Peer] (the first is at line \(peers[0].line))")
        }
        var built: [Config.Peer] = []
        built.reserveCapacity(peers.count)
        var routed: [IPPrefix: Int] = [:]
        var keyLines: [Bytes32: Int] = [:]
        keyLines.reserveCapacity(peers.count)
        for peer in peers {
            guard let publicKey = peer.publicKey else { throw error(peer.line, "[Peer] has no PublicKey") }
            if let twinLine = keyLines.updateValue(peer.line, forKey: publicKey) {
                throw error(peer.seen[.publicKey]!, "this PublicKey is already used by the [Peer] at line \(twinLine)")
            }
            var allowed: [IPPrefix] = []
            for (prefix, line) in peer.allowedIPs {
                if let owner = routed[prefix], owner != peer.line {
                    throw error(line, "AllowedIPs \(prefix) is already routed to the [Peer] at line \(owner)")
                }
                routed[prefix] = peer.line
                if !allowed.contains(prefix) { allowed.append(prefix) }
            }
            built.append(
                Config.Peer(
                    publicKey: publicKey, presharedKey: peer.presharedKey, allowedIPs: allowed,
                    endpoint: peer.endpoint, persistentKeepalive: peer.persistentKeepalive, line: peer.line,
                    name: peer.name))
        }
        let interfaceModel = Config.Interface(
            privateKey: privateKey, addresses: draft.addresses, listenPort: draft.listenPort, mtu: draft.mtu,
            mode: draft.mode, transport: draft.transport, name: draft.name, bridge: draft.bridge, user: draft.user,
            mssClamp: draft.mssClamp, pathMTUDiscovery: draft.pathMTUDiscovery, keepNetAdmin: draft.keepNetAdmin,
            metricsListen: draft.metricsListen)
        var model = Config(fileName: fileName, interface: interfaceModel, peers: built)
        model.interface.host = draft.host
        model.interface.cipher = draft.cipher
        model.interface.threads = draft.threads
        return model
    }

    // MARK: - Suggestions

    /// The candidate nearest to `text` (case-insensitive edit distance) if near enough to be a
    /// likely typo, or one that contains `text` (4 characters or more) as a part.
    static func closest(to text: String, among candidates: [String]) -> String? {
        let lowered = text.lowercased()
        var best: (name: String, distance: Int)? = nil
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        if let best, best.distance <= max(1, min(3, best.name.count / 3)) { return best.name }
        if lowered.count >= 4, let part = candidates.first(where: { $0.lowercased().contains(lowered) }) { return part }
        return nil
    }

    /// Levenshtein distance between two strings, by characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
                current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
