// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands
@testable import VPNCore
import VPNCrypto
import VPNDaemon
import VPNTesting

/// `vpnd doctor`'s diagnosis: each sentence, from the counters that back it.
@Suite("Doctor")
struct DoctorTests {
    static let ourKey = Bytes32([UInt8](repeating: 9, count: 32))!
    static let peerKey = Bytes32([UInt8](repeating: 1, count: 32))!
    static let server = Endpoint(ipv4: 198, 18, 0, 1, port: 51820)
    static let now = Instant(nanoseconds: 1_000_000_000_000)
    static let udp = DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: "tun", transport: "udp")

    /// A peer with nothing counted yet; `configured`: we dial its Endpoint (a client's server).
    static func peer(configured: Bool) -> PeerStatus {
        var peer = PeerStatus(
            publicKey: peerKey, endpoint: configured ? server : nil, allowedIPs: [], latestHandshake: nil,
            receivedBytes: 0, receivedPackets: 0, sentBytes: 0, sentPackets: 0, persistentKeepalive: .zero, drops: [:],
            hasSession: false)
        peer.endpointConfigured = configured
        peer.pathMTU = 1420
        return peer
    }

    /// A peer with a session that carried traffic both ways.
    static func healthyPeer(configured: Bool) -> PeerStatus {
        var peer = peer(configured: configured)
        peer.hasSession = true
        peer.latestHandshake = now - .seconds(12)
        peer.receivedPackets = 40
        peer.sentPackets = 41
        peer.handshakes = 1
        if configured {
            peer.initiationsSent = 1
            peer.responsesReceived = 1
        } else {
            peer.initiationsAnswered = 1
        }
        return peer
    }

    static func status(
        _ peers: [PeerStatus], drops: [DropReason: UInt64] = [:], unknown: [UnknownInitiator] = [],
        mode: HandshakeIdentity.Mode = .tun, tcp: TCPConnectionStatus? = nil, transport: TransportCounters = TransportCounters()
    ) -> DataPlaneStatus {
        DataPlaneStatus(
            tunnel: TunnelStatus(
                publicKey: ourKey, now: now, mode: mode, drops: drops, peers: peers, tcp: tcp,
                privateKey: SecretKey([UInt8](repeating: 5, count: 32)), mtu: 1420, unknownInitiators: unknown),
            transport: transport)
    }

    static func text(_ diagnosis: Doctor.Diagnosis) -> String { diagnosis.lines.joined(separator: "\n") }

    static let ourKeyText = KeyEncoding.encode(ourKey)

    // MARK: - Healthy

    @Test("a session that carries traffic is healthy on both ends: exit status 0")
    func healthy() {
        for configured in [true, false] {
            let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([Self.healthyPeer(configured: configured)]))
            #expect(diagnosis.exitStatus == 0)
            #expect(diagnosis.problems == 0)
            #expect(diagnosis.lines.contains(
                "  healthy: session up, latest handshake 12 seconds ago, 40 packets received and 41 sent"))
            #expect(diagnosis.lines.last == "vpn0: healthy")
            #expect(diagnosis.lines.first == "interface vpn0: public key \(Self.ourKeyText), Mode = tun, Transport = udp, listening on port 51820, MTU 1420")
            #expect(diagnosis.lines.contains("  MTU 1420, path MTU 1420"))
            #expect(diagnosis.lines.contains("drops since start: none"))
        }
    }

    @Test("a session over which nothing came back yet is up, not yet healthy, and no problem")
    func sessionWithoutTraffic() {
        var peer = Self.healthyPeer(configured: true)
        peer.receivedPackets = 0
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(diagnosis.exitStatus == 0)
        #expect(Self.text(diagnosis).contains("session up (latest handshake 12 seconds ago), but nothing has come back over it yet (41 packets sent)"))
        #expect(diagnosis.lines.last == "vpn0: no problem found (0 of 1 peers with a session that carries traffic)")
    }

    @Test("the path MTU says how it was found")
    func pathMTU() {
        var peer = Self.healthyPeer(configured: true)
        peer.pathMTU = 1380
        peer.echoesProbes = true
        #expect(Doctor.pathText(peer, status: Self.status([peer])) == "MTU 1420, path MTU 1380 (found by path probes)")
        peer.echoesProbes = false
        #expect(Doctor.pathText(peer, status: Self.status([peer])) == "MTU 1420, path MTU 1380 (the peer does not answer path probes)")
    }

    // MARK: - A client (we dial the peer)

    @Test("initiations sent and nothing back: one sentence naming the Endpoint, the port, and our public key")
    func unanswered() {
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 3
        peer.initiationsUnanswered = 2
        peer.initiationsUnansweredInARow = 2
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: 2 handshake initiations to 198.18.0.1:51820 went unanswered (and none ever was): either the Endpoint 198.18.0.1:51820 is wrong, or a firewall drops UDP to port 51820, or the server does not know us: it has no [Peer] for our public key \(Self.ourKeyText) (or another key for us, or runs the other Mode or Cipher), or our PublicKey for it is not its key; a server that does not know us sends nothing back"))
        #expect(diagnosis.lines.last == "vpn0: 1 problem found")
        // After a session existed, it says since when.
        peer.latestHandshake = Self.now - .seconds(200)
        #expect(Self.text(Doctor.diagnose(info: Self.udp, status: Self.status([peer])))
            .contains("went unanswered (since the latest handshake, 3 minutes, 20 seconds ago)"))
    }

    @Test("over TCP: no connection at all is its own sentence; unanswered over a connection names TCP")
    func overTCP() {
        let info = DaemonInfo(interfaceName: "vpn0", listenPort: nil, mode: "tun", transport: "tcp")
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 3
        peer.initiationsUnansweredInARow = 2
        let refused = Doctor.diagnose(
            info: info, status: Self.status([peer], tcp: TCPConnectionStatus(connects: 0), transport: TransportCounters(noConnection: 3)))
        #expect(refused.exitStatus == 1)
        #expect(Self.text(refused).contains(
            "problem: no TCP connection to 198.18.0.1:51820 came up (3 messages found none): the Endpoint 198.18.0.1:51820 is wrong, nothing listens on TCP port 51820 there (a server with Transport = udp), or a firewall drops TCP to port 51820"))
        let connected = Doctor.diagnose(info: info, status: Self.status([peer], tcp: TCPConnectionStatus(open: 1, connects: 1)))
        #expect(Self.text(connected).contains("or a firewall drops TCP to port 51820, or the server does not know us"))
    }

    @Test("cookie replies: the server is under load, said with or without a session")
    func cookies() {
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 2
        peer.initiationsUnansweredInARow = 1
        peer.cookieRepliesReceived = 2
        let waiting = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(waiting.lines.contains(
            "  the server is under load: it answered 2 initiations with cookie replies (each retry carries the cookie and goes through)"))
        #expect(waiting.exitStatus == 1)
        var up = Self.healthyPeer(configured: true)
        up.cookieRepliesReceived = 1
        let fine = Doctor.diagnose(info: Self.udp, status: Self.status([up]))
        #expect(Self.text(fine).contains("the server is under load: it answered 1 initiation with cookie replies"))
        #expect(fine.exitStatus == 0)
    }

    @Test("responses that did not authenticate: different pre-shared keys")
    func responsesNotAuthenticated() {
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 3
        peer.initiationsUnansweredInARow = 2
        peer.drops = [.handshakeFailed: 3]
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: 3 handshake responses from 198.18.0.1:51820 did not authenticate: the two ends have different pre-shared keys, or only one end has one (check both ends' keys, PresharedKey, Mode (tun/tap) and Cipher)"))
        #expect(!Self.text(diagnosis).contains("went unanswered"), "one cause, not two")
    }

    @Test("a first initiation still waiting is a handshake under way, not yet a cause")
    func underWay() {
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 1
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: a handshake with 198.18.0.1:51820 is under way (1 initiation sent, none answered yet; vpnd retries every 5 s): run vpnd doctor again in a few seconds"))
    }

    @Test("a session that ended with no traffic since, and a peer never tried")
    func idleAndUntried() {
        var peer = Self.peer(configured: true)
        peer.initiationsSent = 1
        peer.responsesReceived = 1
        peer.handshakes = 1
        peer.latestHandshake = Self.now - .seconds(400)
        let idle = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(idle.exitStatus == 1)
        #expect(Self.text(idle).contains(
            "problem: no session: the latest one was made 6 minutes, 40 seconds ago and nothing was sent to the peer since"))
        let untried = Doctor.diagnose(info: Self.udp, status: Self.status([Self.peer(configured: true)]))
        #expect(Self.text(untried).contains("problem: no handshake tried yet: no initiation has been sent to 198.18.0.1:51820"))
    }

    // MARK: - A server (the peer calls us)

    @Test("answers the peer never confirmed: different pre-shared keys, or our responses do not reach it")
    func unconfirmed() {
        var peer = Self.peer(configured: false)
        peer.endpoint = Endpoint(ipv4: 198, 18, 0, 2, port: 40000)
        peer.initiationsAnswered = 3
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([peer]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: we answered 3 handshake initiations from this peer (latest from 198.18.0.2:40000), and it confirmed none: the two ends have different pre-shared keys (or only one end has one), or our responses do not reach it (a firewall that lets its UDP in but ours not out)"))
        // Some confirmed before: the rest are counted as never confirmed.
        peer.handshakes = 2
        peer.latestHandshake = Self.now - .seconds(300)
        peer.initiationsAnswered = 5
        #expect(Self.text(Doctor.diagnose(info: Self.udp, status: Self.status([peer]))).contains("and 3 of them it never confirmed"))
    }

    @Test("a client not heard from, or quiet since its last session, is no problem of this end")
    func quietClient() {
        let unheard = Doctor.diagnose(info: Self.udp, status: Self.status([Self.peer(configured: false)]))
        #expect(unheard.exitStatus == 0)
        #expect(Self.text(unheard).contains("not heard from yet: no initiation from this peer has authenticated here"))
        var quiet = Self.peer(configured: false)
        quiet.handshakes = 1
        quiet.initiationsAnswered = 1
        quiet.latestHandshake = Self.now - .seconds(30)
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([quiet]))
        #expect(diagnosis.exitStatus == 0)
        #expect(Self.text(diagnosis).contains("no session now: the latest handshake was 30 seconds ago and the peer has been quiet since"))
        #expect(diagnosis.lines.last == "vpn0: no problem found (0 of 1 peers with a session that carries traffic)")
    }

    @Test("initiations with a bad mac1: the sender has the wrong key for this end, whose public key is printed")
    func badMAC1() {
        let diagnosis = Doctor.diagnose(
            info: Self.udp, status: Self.status([Self.peer(configured: false)], drops: [.invalidMAC1: 4]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: 4 handshake messages failed mac1 here: the sender has the wrong public key for this end (or it was not meant for us); its [Peer] PublicKey for this end must be \(Self.ourKeyText)"))
    }

    @Test("initiations from a key that is no [Peer] here: each remembered key is printed, to add it")
    func unknownKeys() {
        let stranger = Bytes32([UInt8](repeating: 7, count: 32))!
        let other = Bytes32([UInt8](repeating: 6, count: 32))!
        let diagnosis = Doctor.diagnose(
            info: Self.udp,
            status: Self.status([Self.peer(configured: false)], drops: [.unknownPeer: 5], unknown: [
                UnknownInitiator(publicKey: stranger, initiations: 3, lastSeen: Self.now - .seconds(2), source: Endpoint(ipv4: 198, 18, 0, 2, port: 40000)),
                UnknownInitiator(publicKey: other, initiations: 2, lastSeen: Self.now - .seconds(70), source: Endpoint(ipv4: 198, 18, 0, 3, port: 1)),
            ]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.problems == 2)
        let key = KeyEncoding.encode(stranger)
        #expect(diagnosis.lines.contains(
            "  problem: 3 handshake initiations came from public key \(key) (latest from 198.18.0.2:40000, 2 seconds ago), which is no [Peer] here: a client missing from this end's config (if it is yours; anyone who knows this end's public key can send one); add a [Peer] with PublicKey = \(key) (then vpnd reload), or correct the key it has"))
        #expect(Self.text(diagnosis).contains("2 handshake initiations came from public key \(KeyEncoding.encode(other)) (latest from 198.18.0.3:1, 1 minute, 10 seconds ago)"))
        // Counted but none remembered (e.g. since added as peers): said without a key.
        let bare = Doctor.diagnose(info: Self.udp, status: Self.status([], drops: [.unknownPeer: 2]))
        #expect(Self.text(bare).contains("problem: 2 handshake initiations came from public keys that are no [Peer] here"))
    }

    @Test("initiations that passed mac1 and did not decrypt: the other Mode, with this end's Mode named")
    func notDecrypted() {
        let info = DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: "tap", transport: "udp")
        let diagnosis = Doctor.diagnose(
            info: info, status: Self.status([Self.peer(configured: false)], drops: [.handshakeFailed: 2], mode: .tap))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: 2 handshake initiations passed mac1 here (the sender has this end's public key) but did not decrypt: wrong key, or a peer in the other Mode (tun/tap) or with another Cipher; this end runs Mode = tap and Cipher = chacha20poly1305, and a tun end against a tap end, or ends with different Ciphers, fail so: set the same Mode and Cipher on both ends"))
    }

    @Test("stale timestamps: a replay, two clients sharing one key, or a clock")
    func stale() {
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([Self.healthyPeer(configured: false)], drops: [.staleTimestamp: 1]))
        #expect(diagnosis.exitStatus == 1)
        #expect(diagnosis.lines.contains(
            "  problem: 1 handshake initiation carried a timestamp not newer than the last one accepted from the same key: a replayed initiation (harmless), two clients sharing one key (give each its own key pair), or a client whose clock went back"))
    }

    @Test("no private key (vpnd-wg before wg set) is a problem")
    func noPrivateKey() {
        var status = Self.status([])
        status.tunnel.privateKey = nil
        let diagnosis = Doctor.diagnose(info: Self.udp, status: status)
        #expect(diagnosis.exitStatus == 1)
        #expect(Self.text(diagnosis).contains("problem: this interface has no private key yet, so it can make no handshake: set one (wg set vpn0 private-key FILE)"))
        #expect(Self.text(diagnosis).contains("public key (none)"))
    }

    // MARK: - Drops

    @Test("drops: the interface's and every peer's added up, the three most frequent each explained in one line")
    func topDrops() throws {
        var one = Self.healthyPeer(configured: false)
        one.drops = [.replayed: 5, .noRoute: 1]
        var two = Self.healthyPeer(configured: false)
        two.publicKey = Bytes32([UInt8](repeating: 2, count: 32))!
        two.drops = [.replayed: 4, .sourceNotAllowed: 7]
        let diagnosis = Doctor.diagnose(info: Self.udp, status: Self.status([one, two], drops: [.truncated: 7, .noRoute: 1]))
        let at = try #require(diagnosis.lines.firstIndex(of: "drops since start: 25 in all, the three most frequent:"))
        #expect(Array(diagnosis.lines[(at + 1)...(at + 3)]) == [
            "  replayed 9: \(DropReason.replayed.explanation)",
            "  truncated 7: \(DropReason.truncated.explanation)",
            "  source-not-allowed 7: \(DropReason.sourceNotAllowed.explanation)",
        ])
        #expect(diagnosis.exitStatus == 0, "drops alone are no handshake problem")
        let few = Doctor.dropLines(Self.status([], drops: [.noRoute: 2]))
        #expect(few == ["drops since start: 2 in all:", "  no-route 2: \(DropReason.noRoute.explanation)"])
    }

    @Test("every drop reason has its own one-line explanation")
    func explanations() {
        let texts = DropReason.allCases.map(\.explanation)
        #expect(Set(texts).count == DropReason.allCases.count)
        #expect(texts.allSatisfy { !$0.isEmpty && !$0.contains("\n") && $0.count < 200 })
    }

    // MARK: - The control socket's answer

    @Test("the control socket answers `status N` then the lines")
    func reply() {
        let reply = Doctor.reply(info: Self.udp, status: Self.status([Self.healthyPeer(configured: true)]))
        #expect(reply.hasPrefix("status 0\ninterface vpn0: "))
        #expect(reply.hasSuffix("vpn0: healthy\n"))
        let bad = Doctor.reply(info: Self.udp, status: Self.status([], drops: [.invalidMAC1: 1]))
        #expect(bad.hasPrefix("status 1\n"))
    }

    // MARK: - From real tunnels

    /// Both ends' diagnoses after `seconds` of a simulated pair built from `options`.
    static func simulate(
        _ options: TwoPeerOptions, seconds: Int = 11, answer: Bool = false
    ) -> (server: String, client: String, exits: (Int32, Int32)) {
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: TestPackets.numberedPayload(0))
        sim.run(for: .seconds(Int64(seconds)))
        if answer {
            sim.sendData(from: .a, payload: TestPackets.numberedPayload(1))
            sim.run(for: .milliseconds(10))
        }
        let server = Doctor.diagnose(
            info: DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: options.mode == .tap ? "tap" : "tun", transport: "udp",
                             cipher: options.cipher.rawValue),
            status: DataPlaneStatus(tunnel: sim.a.tunnel.status(now: sim.now)))
        let client = Doctor.diagnose(
            info: DaemonInfo(interfaceName: "vpn0", listenPort: 40000, mode: (options.bMode ?? options.mode) == .tap ? "tap" : "tun", transport: "udp",
                             cipher: (options.bCipher ?? options.cipher).rawValue),
            status: DataPlaneStatus(tunnel: sim.b.tunnel.status(now: sim.now)))
        return (text(server), text(client), (server.exitStatus, client.exitStatus))
    }

    @Test("real counters: a working pair is healthy on both ends once traffic went both ways")
    func simulatedHealthy() {
        let oneWay = Self.simulate(TwoPeerOptions(), seconds: 1)
        #expect(oneWay.exits == (0, 0))
        #expect(oneWay.client.contains("but nothing has come back over it yet"))
        let result = Self.simulate(TwoPeerOptions(), seconds: 1, answer: true)
        #expect(result.exits == (0, 0))
        #expect(result.server.hasSuffix("vpn0: healthy") && result.client.hasSuffix("vpn0: healthy"))
    }

    @Test("real counters: the client has a wrong public key for the server")
    func simulatedWrongServerKey() {
        var options = TwoPeerOptions()
        options.bHasWrongPublicKeyForA = true
        let result = Self.simulate(options)
        #expect(result.exits == (1, 1))
        #expect(result.server.contains("failed mac1 here"))
        #expect(result.client.contains("a firewall drops UDP to port 51820"))
    }

    @Test("real counters: different pre-shared keys")
    func simulatedPresharedKeys() {
        var options = TwoPeerOptions()
        options.presharedKeyAtA = [UInt8](repeating: 1, count: 32)
        options.presharedKeyAtB = [UInt8](repeating: 2, count: 32)
        let result = Self.simulate(options)
        #expect(result.exits == (1, 1))
        #expect(result.server.contains("and it confirmed none: the two ends have different pre-shared keys"))
        #expect(result.client.contains("did not authenticate: the two ends have different pre-shared keys"))
    }

    @Test("real counters: a tap server and a tun client")
    func simulatedModes() {
        var options = TwoPeerOptions()
        options.mode = .tap
        options.bMode = .tun
        let result = Self.simulate(options)
        #expect(result.exits == (1, 1))
        #expect(result.server.contains("but did not decrypt: wrong key, or a peer in the other Mode (tun/tap) or with another Cipher; this end runs Mode = tap"))
        #expect(result.client.contains("a firewall drops UDP to port 51820"))
    }

    @Test("real counters: an AES-256-GCM server and a ChaCha20-Poly1305 client")
    func simulatedCiphers() throws {
        try #require(AES256GCM.isAvailable)
        var options = TwoPeerOptions()
        options.cipher = .aes256GCM
        options.bCipher = .chaCha20Poly1305
        let result = Self.simulate(options)
        #expect(result.exits == (1, 1))
        #expect(result.server.hasPrefix("interface vpn0: public key ") && result.server.contains(", Mode = tun, Cipher = aes256gcm, Transport = udp"))
        #expect(result.server.contains("this end runs Mode = tun and Cipher = aes256gcm, and a tun end against a tap end, or ends with different Ciphers, fail so: set the same Mode and Cipher on both ends"))
    }

    @Test("real counters: a client missing from the server's config")
    func simulatedMissingClient() {
        var options = TwoPeerOptions()
        options.aKnowsB = false
        let sim = TwoPeerSimulator(options)
        let clientKey = KeyEncoding.encode(sim.b.tunnel.identity.publicKey)
        let result = Self.simulate(options)
        #expect(result.exits == (1, 1))
        #expect(result.server.contains("came from public key \(clientKey) (latest from 198.51.100.2:40000"))
        #expect(result.client.contains("a firewall drops UDP to port 51820"))
    }
}

/// The doctor's counters in `vpnd metrics`: one sample per peer (or per unknown key) with its value.
@Suite("Doctor's counters in vpnd metrics")
struct DoctorMetricsTests {
    @Test("initiations, responses, failures, answered initiations per peer; unknown keys per key")
    func families() {
        var peer = DoctorTests.peer(configured: true)
        peer.initiationsSent = 11
        peer.responsesReceived = 3
        peer.initiationsUnanswered = 7
        peer.initiationsAnswered = 2
        let stranger = Bytes32([UInt8](repeating: 7, count: 32))!
        let status = DoctorTests.status([peer], unknown: [
            UnknownInitiator(publicKey: stranger, initiations: 5, lastSeen: DoctorTests.now, source: DoctorTests.server),
        ])
        let lines = MetricsFormatter.text(info: DoctorTests.udp, status: status, wallSeconds: 1_800_000_000)
            .split(separator: "\n").map(String.init)
        func value(_ family: String, key: Bytes32) -> String? {
            let samples = lines.filter { $0.hasPrefix(family + "{") && $0.contains("public_key=\"\(KeyEncoding.encode(key))\"") }
            guard samples.count == 1 else { return nil }
            return samples[0].split(separator: " ").last.map(String.init)
        }
        #expect(value("vpnd_peer_handshake_initiations_total", key: DoctorTests.peerKey) == "11")
        #expect(value("vpnd_peer_handshake_responses_total", key: DoctorTests.peerKey) == "3")
        #expect(value("vpnd_peer_handshake_failures_total", key: DoctorTests.peerKey) == "7")
        #expect(value("vpnd_peer_handshake_initiations_answered_total", key: DoctorTests.peerKey) == "2")
        #expect(value("vpnd_unknown_initiator_initiations_total", key: stranger) == "5")
        #expect(lines.contains("# TYPE vpnd_peer_handshake_failures_total counter"))
    }
}
