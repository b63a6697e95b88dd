// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore
import VPNCrypto
import VPNTesting

/// What a reload asks the running daemon for (``Reloader/difference(from:to:)``) and what it refuses.
@Suite("Reloader")
struct ReloaderTests {
    static func key(_ seed: UInt64) -> SecretKey {
        var entropy = SeededEntropy(seed: seed)
        return X25519.generatePrivateKey(using: &entropy)
    }
    static let ours = key(1)
    static let a = X25519.publicKey(for: key(2))
    static let b = X25519.publicKey(for: key(3))

    static func config(_ text: String) throws -> Config {
        try Config.parse(
            "[Interface]\nPrivateKey = \(KeyEncoding.encode(ours))\nListenPort = 51820\n" + text
                + "[Peer]\nPublicKey = \(KeyEncoding.encode(a))\n", fileName: "t.conf")
    }

    static func peer(_ key: Bytes32, _ allowed: String, keepalive: Int = 0, endpoint: Endpoint? = nil) -> PeerConfiguration {
        PeerConfiguration(
            publicKey: key, allowedIPs: [IPPrefix(allowed)!], endpoint: endpoint, persistentKeepalive: .seconds(keepalive))
    }

    @Test("the same file asks for nothing; an unchanged peer is never named")
    func sameFileIsEmpty() throws {
        let config = try Self.config("")
        let loaded = Reloader.Loaded(config: config, privateKey: Self.ours, peers: [Self.peer(Self.a, "10.0.0.2/32")])
        #expect(Reloader.difference(from: loaded, to: (config, Self.ours, loaded.peers)).isEmpty)
        let more = Reloader.difference(
            from: loaded, to: (config, Self.ours, loaded.peers + [Self.peer(Self.b, "10.0.0.3/32", keepalive: 25)]))
        #expect(more.peers.map(\.publicKey) == [Self.b])
        #expect(more.peers.first?.persistentKeepalive == 25)
        #expect(more.peers.first?.allowedIPs == [.add(IPPrefix("10.0.0.3/32")!)])
        #expect(more.privateKey == nil && more.listenPort == nil && !more.replacePeers && more.mtu == nil)
        let lowered = Reloader.difference(from: loaded, to: (try Self.config("MTU = 1380\n"), Self.ours, loaded.peers))
        #expect(lowered.mtu == 1380 && lowered.peers.isEmpty)
    }

    @Test("a removed peer, changed AllowedIPs, a new key and port: only those")
    func changes() throws {
        let old = try Self.config("")
        let new = try Config.parse(
            "[Interface]\nPrivateKey = \(KeyEncoding.encode(Self.key(9)))\nListenPort = 51821\n[Peer]\nPublicKey = \(KeyEncoding.encode(Self.a))\n",
            fileName: "t.conf")
        let loaded = Reloader.Loaded(
            config: old, privateKey: Self.ours, peers: [Self.peer(Self.a, "10.0.0.2/32"), Self.peer(Self.b, "10.0.0.3/32")])
        let request = Reloader.difference(from: loaded, to: (new, Self.key(9), [Self.peer(Self.a, "10.0.0.0/24")]))
        #expect(request.listenPort == 51821)
        guard case .set? = request.privateKey else {
            Issue.record("no new private key in the request")
            return
        }
        #expect(request.peers.count == 2)
        #expect(request.peers.first { $0.publicKey == Self.b }?.remove == true)
        let changed = try #require(request.peers.first { $0.publicKey == Self.a })
        #expect(changed.replaceAllowedIPs && changed.allowedIPs == [.add(IPPrefix("10.0.0.0/24")!)])
        #expect(changed.presharedKey == nil && changed.persistentKeepalive == nil && changed.endpoint == nil)
    }

    @Test("keys only a restart applies are refused, each named")
    func fixedKeys() throws {
        let old = try Self.config("")
        #expect(throws: Never.self) { try Reloader.checkFixedKeys(old, old) }
        #expect(throws: Never.self) { try Reloader.checkFixedKeys(old, try Self.config("MTU = 1380\n")) }
        for (line, name) in [("Mode = tap", "Mode"), ("KeepNetAdmin = no", "KeepNetAdmin"), ("Name = other0", "Name"), ("MSSClamp = off", "MSSClamp"),
            ("MetricsListen = 127.0.0.1:9586", "MetricsListen"), ("Cipher = aes256gcm", "Cipher (chacha20poly1305 -> aes256gcm)"),
            ("Threads = 2", "Threads (auto -> 2)")] {
            let new = try Self.config(line + "\n")
            #expect {
                try Reloader.checkFixedKeys(old, new)
            } throws: { error in
                "\(error)".contains(name) && "\(error)".contains("restart vpnd")
            }
        }
    }
}
