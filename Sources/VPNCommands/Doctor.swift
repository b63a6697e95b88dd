// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon

/// `vpnd doctor`'s diagnosis of one daemon: why its tunnel is not up, read from the counters of its
/// status snapshot, never guessed. A pure function of the snapshot, so every sentence has a test.
///
/// Per peer with a configured Endpoint (we initiate): a session is the goal. Without one, the
/// counters tell why: responses that did not authenticate, cookie replies, initiations that went
/// unanswered (over TCP: no connection), or a handshake still under way. Per peer that calls us: a
/// session, or answers it never confirmed. Per interface: the handshake refusals that mean a
/// misconfiguration (mac1, unknown keys, initiations that did not decrypt, stale timestamps), then
/// the three most frequent drops, each explained.
enum Doctor {
    /// What the doctor found: the lines to print and whether any is a problem (exit status 1).
    struct Diagnosis: Equatable {
        var lines: [String]
        var problems: Int

        var exitStatus: Int32 { problems > 0 ? 1 : 0 }
    }

    /// The control socket's answer to `doctor` starts with this and the exit status, on a line of
    /// its own; the diagnosis follows.
    static let statusPrefix = "status "

    /// The control socket's answer to `doctor`.
    static func reply(info: DaemonInfo, status: DataPlaneStatus) -> String {
        let diagnosis = diagnose(info: info, status: status)
        return statusPrefix + "\(diagnosis.exitStatus)\n" + diagnosis.lines.map { $0 + "\n" }.joined()
    }

    /// The diagnosis of the daemon `info` describes, from `status`.
    static func diagnose(info: DaemonInfo, status: DataPlaneStatus) -> Diagnosis {
        var lines: [String] = []
        var problems = 0
        func problem(_ line: String) {
            lines.append("  problem: " + line)
            problems += 1
        }
        func note(_ line: String) { lines.append("  " + line) }

        let ourKey = StatusFormatter.publicKey(status)
        var header = "interface \(info.interfaceName): public key \(ourKey), Mode = \(info.mode), "
            + (info.cipher == TransportCipher.chaCha20Poly1305.rawValue ? "" : "Cipher = \(info.cipher), ") + "Transport = \(info.transport)"
        if let port = status.listenPort ?? info.listenPort { header += ", listening on port \(port)" }
        if status.mtu > 0 { header += ", MTU \(status.mtu)" }
        lines.append(header)
        if status.tunnel.privateKey == nil {
            problem("this interface has no private key yet, so it can make no handshake: set one (wg set \(info.interfaceName) private-key FILE)")
        }
        if status.peers.isEmpty { note("no peers configured: add a [Peer] to the config (then vpnd reload)") }

        var healthy = 0
        for peer in status.peers {
            let endpoint = peer.endpoint.map { "\($0)" }
            lines.append("peer \(KeyEncoding.encode(peer.publicKey))" + (endpoint.map { " (endpoint \($0))" } ?? ""))
            let findings = peer.endpointConfigured
                ? initiatorFindings(peer, info: info, status: status) : responderFindings(peer, status: status)
            for finding in findings {
                switch finding {
                case .problem(let line): problem(line)
                case .note(let line): note(line)
                case .healthy(let line):
                    note("healthy: " + line)
                    healthy += 1
                }
            }
            note(pathText(peer, status: status))
        }

        let interfaceLines = interfaceFindings(info: info, status: status)
        if !interfaceLines.isEmpty { lines.append("interface \(info.interfaceName), handshakes from anyone:") }
        for line in interfaceLines { problem(line) }

        lines.append(contentsOf: dropLines(status))
        if problems > 0 {
            lines.append("\(info.interfaceName): \(problems) problem\(problems == 1 ? "" : "s") found")
        } else if healthy == status.peers.count && healthy > 0 {
            lines.append("\(info.interfaceName): healthy")
        } else {
            lines.append("\(info.interfaceName): no problem found (\(healthy) of \(status.peers.count) peers with a session that carries traffic)")
        }
        return Diagnosis(lines: lines, problems: problems)
    }

    enum Finding: Equatable {
        case problem(String)
        case note(String)
        case healthy(String)
    }

    // MARK: - A peer we dial

    /// A peer with a configured Endpoint: we initiate, so no session is a problem, and the counters
    /// say which.
    static func initiatorFindings(_ peer: PeerStatus, info: DaemonInfo, status: DataPlaneStatus) -> [Finding] {
        var out: [Finding] = []
        let endpoint = peer.endpoint.map { "\($0)" } ?? "(none)"
        let port = peer.endpoint.map { String($0.port) } ?? "?"
        if peer.cookieRepliesReceived > 0 {
            out.append(.note(
                "the server is under load: it answered \(count(peer.cookieRepliesReceived, "initiation")) with cookie replies (each retry carries the cookie and goes through)"))
        }
        if peer.hasSession {
            out.append(sessionFinding(peer, status: status))
            return out
        }
        let refused = peer.drops[.handshakeFailed] ?? 0
        let tcpClient = status.tcp != nil && info.listenPort == nil
        if refused > 0 {
            out.append(.problem(
                "\(count(refused, "handshake response")) from \(endpoint) did not authenticate: the two ends have different pre-shared keys, or only one end has one (\(HandshakeTrouble.responseNotAuthenticated))"))
        } else if tcpClient, let tcp = status.tcp, tcp.connects == 0 {
            out.append(.problem(
                "no TCP connection to \(endpoint) came up (\(status.transport.noConnection) messages found none): the Endpoint \(endpoint) is wrong, nothing listens on TCP port \(port) there (a server with Transport = udp), or a firewall drops TCP to port \(port)"))
        } else if peer.initiationsUnansweredInARow > 0 {
            let since = peer.latestHandshake.map { "since the latest handshake, \(StatusFormatter.ago(status.now - $0)) ago" }
                ?? "and none ever was"
            let carrier = tcpClient ? "TCP" : "UDP"
            out.append(.problem(
                "\(count(peer.initiationsUnansweredInARow, "handshake initiation")) to \(endpoint) went unanswered (\(since)): either the Endpoint \(endpoint) is wrong, or a firewall drops \(carrier) to port \(port), or the server does not know us: it has no [Peer] for our public key \(StatusFormatter.publicKey(status)) (or another key for us, or runs the other Mode or Cipher), or our PublicKey for it is not its key; a server that does not know us sends nothing back"))
        } else if peer.initiationsSent > peer.responsesReceived {
            out.append(.problem(
                "a handshake with \(endpoint) is under way (\(count(peer.initiationsSent, "initiation")) sent, none answered yet; vpnd retries every 5 s): run vpnd doctor again in a few seconds"))
        } else if let latest = peer.latestHandshake {
            out.append(.problem(
                "no session: the latest one was made \(StatusFormatter.ago(status.now - latest)) ago and nothing was sent to the peer since; vpnd makes a new one as soon as there is traffic for it (PersistentKeepalive = 25 keeps one up)"))
        } else {
            out.append(.problem("no handshake tried yet: no initiation has been sent to \(endpoint)"))
        }
        return out
    }

    // MARK: - A peer that calls us

    /// A peer without a configured Endpoint (a server's client): no session is its choice, unless
    /// we answered it and it never confirmed.
    static func responderFindings(_ peer: PeerStatus, status: DataPlaneStatus) -> [Finding] {
        if peer.hasSession { return [sessionFinding(peer, status: status)] }
        // Sessions the peer initiated: every one began with an answer of ours that it confirmed.
        let confirmed = peer.handshakes &- min(peer.handshakes, peer.responsesReceived)
        if peer.initiationsAnswered > confirmed {
            let unconfirmed = peer.initiationsAnswered - confirmed
            let from = peer.endpoint.map { " (latest from \($0))" } ?? ""
            return [.problem(
                "we answered \(count(peer.initiationsAnswered, "handshake initiation")) from this peer\(from), and \(unconfirmed == peer.initiationsAnswered ? "it confirmed none" : "\(unconfirmed) of them it never confirmed"): the two ends have different pre-shared keys (or only one end has one), or our responses do not reach it (a firewall that lets its UDP in but ours not out)")]
        }
        if let latest = peer.latestHandshake {
            return [.note(
                "no session now: the latest handshake was \(StatusFormatter.ago(status.now - latest)) ago and the peer has been quiet since (it makes a new one when it has traffic; PersistentKeepalive on its end keeps one up)")]
        }
        return [.note("not heard from yet: no initiation from this peer has authenticated here (it is not running, or see the handshake lines below)")]
    }

    /// A peer with a usable session: healthy when something came back over it.
    static func sessionFinding(_ peer: PeerStatus, status: DataPlaneStatus) -> Finding {
        let latest = peer.latestHandshake.map { "latest handshake \(StatusFormatter.ago(status.now - $0)) ago" }
            ?? "no handshake time known"
        guard peer.receivedPackets > 0 else {
            return .note("session up (\(latest)), but nothing has come back over it yet (\(count(peer.sentPackets, "packet")) sent)")
        }
        return .healthy(
            "session up, \(latest), \(count(peer.receivedPackets, "packet")) received and \(peer.sentPackets) sent")
    }

    static func pathText(_ peer: PeerStatus, status: DataPlaneStatus) -> String {
        let mtu = status.mtu > 0 ? "MTU \(status.mtu)" : "MTU unknown"
        guard peer.pathMTU > 0 else { return "\(mtu), path MTU not known" }
        let how: String
        switch peer.echoesProbes {
        case true?: how = " (found by path probes)"
        case false?: how = " (the peer does not answer path probes)"
        case nil: how = ""
        }
        return "\(mtu), path MTU \(peer.pathMTU)\(how)"
    }

    // MARK: - The interface

    /// The refusals counted for the interface that each mean a misconfiguration somewhere.
    static func interfaceFindings(info: DaemonInfo, status: DataPlaneStatus) -> [String] {
        var out: [String] = []
        let drops = status.drops
        if let mac1 = drops[.invalidMAC1], mac1 > 0 {
            out.append(
                "\(count(mac1, "handshake message")) failed mac1 here: the sender has the wrong public key for this end (or it was not meant for us); its [Peer] PublicKey for this end must be \(StatusFormatter.publicKey(status))")
        }
        let strangers = status.unknownInitiators
        for stranger in strangers {
            out.append(
                "\(count(stranger.initiations, "handshake initiation")) came from public key \(KeyEncoding.encode(stranger.publicKey)) (latest from \(stranger.source), \(StatusFormatter.ago(status.now - stranger.lastSeen)) ago), which is no [Peer] here: a client missing from this end's config (if it is yours; anyone who knows this end's public key can send one); add a [Peer] with PublicKey = \(KeyEncoding.encode(stranger.publicKey)) (then vpnd reload), or correct the key it has")
        }
        let known = strangers.reduce(UInt64(0)) { $0 &+ $1.initiations }
        if let unknown = drops[.unknownPeer], unknown > known && strangers.isEmpty {
            out.append(
                "\(count(unknown, "handshake initiation")) came from public keys that are no [Peer] here: clients missing from this end's config")
        }
        if let failed = drops[.handshakeFailed], failed > 0 {
            out.append(
                "\(count(failed, "handshake initiation")) passed mac1 here (the sender has this end's public key) but did not decrypt: \(HandshakeTrouble.notDecrypted); this end runs Mode = \(info.mode) and Cipher = \(info.cipher), and a tun end against a tap end, or ends with different Ciphers, fail so: set the same Mode and Cipher on both ends")
        }
        if let stale = drops[.staleTimestamp], stale > 0 {
            out.append(
                "\(count(stale, "handshake initiation")) carried a timestamp not newer than the last one accepted from the same key: a replayed initiation (harmless), two clients sharing one key (give each its own key pair), or a client whose clock went back")
        }
        return out
    }

    /// The drops of the interface and its peers added up: the total, then the three most frequent,
    /// each with its meaning.
    static func dropLines(_ status: DataPlaneStatus) -> [String] {
        var total: [DropReason: UInt64] = status.drops
        for peer in status.peers {
            for (reason, n) in peer.drops { total[reason, default: 0] &+= n }
        }
        let sorted = total.filter { $0.value > 0 }.sorted {
            $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue
        }
        guard !sorted.isEmpty else { return ["drops since start: none"] }
        let all = sorted.reduce(UInt64(0)) { $0 &+ $1.value }
        var out = ["drops since start: \(all) in all\(sorted.count > 3 ? ", the three most frequent" : ""):"]
        for (reason, n) in sorted.prefix(3) { out.append("  \(reason) \(n): \(reason.explanation)") }
        return out
    }

    /// `1 initiation`, `3 initiations`.
    static func count(_ n: UInt64, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
}
