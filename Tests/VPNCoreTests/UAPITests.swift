// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto

/// The cross-platform configuration protocol's text: `set=1` requests parsed whole, `get=1`
/// answers in wireguard-go's order.
@Suite("UAPI: set requests and get answers")
struct UAPITests {
    static let keyA = String(repeating: "a1", count: 32)
    static let keyB = String(repeating: "b2", count: 32)
    static let secret = String(repeating: "c3", count: 32)
    static let zeros = String(repeating: "0", count: 64)

    @Test("a request with interface keys and two peer sections, as wg setconf sends it")
    func fullRequest() throws {
        let text = """
            private_key=\(Self.secret)
            listen_port=51820
            fwmark=51820
            replace_peers=true
            public_key=\(Self.keyA)
            preshared_key=\(Self.zeros)
            endpoint=192.0.2.1:51820
            persistent_keepalive_interval=25
            replace_allowed_ips=true
            allowed_ip=10.8.0.2/32
            allowed_ip=10.9.0.1/24
            protocol_version=1
            public_key=\(Self.keyB)
            update_only=true
            endpoint=[2001:db8::1]:4000
            allowed_ip=-fd00::/64

            """
        let request = try UAPISetRequest.parse(text)
        guard case .set(let key) = request.privateKey else {
            Issue.record("no private key")
            return
        }
        #expect(Hex.encode(key.exposedBytes()) == Self.secret)
        #expect(request.listenPort == 51820)
        #expect(request.fwmark == 51820)
        #expect(request.replacePeers)
        #expect(request.peers.count == 2)
        let a = request.peers[0]
        #expect(a.publicKey.description == Self.keyA)
        if case .clear = a.presharedKey {} else { Issue.record("zeros should clear the PSK") }
        #expect(a.endpoint == Endpoint(ipv4: 192, 0, 2, 1, port: 51820))
        #expect(a.persistentKeepalive == 25)
        #expect(a.replaceAllowedIPs && !a.remove && !a.updateOnly)
        // Host bits go, as in wireguard-go.
        #expect(a.allowedIPs == [.add(IPPrefix("10.8.0.2/32")!), .add(IPPrefix("10.9.0.0/24")!)])
        let b = request.peers[1]
        #expect(b.updateOnly && b.presharedKey == nil && b.persistentKeepalive == nil)
        #expect(b.endpoint == Endpoint("[2001:db8::1]:4000"))
        #expect(b.allowedIPs == [.remove(IPPrefix("fd00::/64")!)])
    }

    @Test("remove=true, and an empty request")
    func removeAndEmpty() throws {
        let request = try UAPISetRequest.parse("public_key=\(Self.keyA)\nremove=true\n")
        #expect(request.peers.count == 1 && request.peers[0].remove)
        let empty = try UAPISetRequest.parse("")
        #expect(empty.peers.isEmpty && empty.privateKey == nil && !empty.replacePeers)
    }

    static let hostile: [(String, Int32, String)] = [
        ("listen_port=51820\nbogus=1\n", 22, "line 2: \"bogus\" is no interface key (or comes before public_key)"),
        ("public_key=\(keyA)\nbogus=1\n", 22, "line 2: \"bogus\" is no peer key"),
        ("allowed_ip=10.0.0.0/8\n", 22, "line 1: \"allowed_ip\" is no interface key (or comes before public_key)"),
        ("public_key=zz\n", 22, "line 1: public_key is not 64 hex digits"),
        ("public_key=\(keyA)\npreshared_key=\(String(repeating: "g", count: 64))\n", 22, "line 2: preshared_key is not 64 hex digits"),
        ("private_key=\(keyA.dropLast())\n", 22, "line 1: private_key is not 64 hex digits"),
        ("listen_port\n", 71, "line 1: not key=value: \"listen_port\""),
        ("listen_port=70000\n", 22, "line 1: listen_port \"70000\" is not a number 0-65535"),
        ("listen_port=-1\n", 22, "line 1: listen_port \"-1\" is not a number 0-65535"),
        ("fwmark=0x10\n", 22, "line 1: fwmark \"0x10\" is not a number 0-4294967295"),
        ("replace_peers=false\n", 22, "line 1: replace_peers takes only true, not \"false\""),
        ("public_key=\(keyA)\nprotocol_version=2\n", 22, "line 2: protocol_version \"2\" is not 1"),
        ("public_key=\(keyA)\nendpoint=vpn.example.com:51820\n", 22, "line 2: endpoint \"vpn.example.com:51820\" is not IPv4:port or [IPv6]:port"),
        ("public_key=\(keyA)\nallowed_ip=10.0.0.0/33\n", 22, "line 2: allowed_ip \"10.0.0.0/33\" is not an address/length"),
        ("public_key=\(keyA)\npersistent_keepalive_interval=65536\n", 22, "line 2: persistent_keepalive_interval \"65536\" is not a number 0-65535"),
        ("listen_port=1\n\nlisten_port=2\n", 71, "line 2: an empty line inside the request"),
        ("public_key=\(keyA)\nendpoint=\u{1}\u{7f}:1\n", 22, "line 2: endpoint \"\\u{1}\\u{7f}:1\" is not IPv4:port or [IPv6]:port"),
    ]

    @Test("a bad line refuses the whole request with the errno wireguard-go answers and a line naming it",
          arguments: Self.hostile)
    func refusals(text: String, errno: Int32, message: String) {
        #expect(throws: UAPIError(errno: errno, message)) { try UAPISetRequest.parse(text) }
    }

    @Test("a refused private or preshared key is never echoed")
    func secretsAreNotEchoed() {
        let bad = String(Self.secret.dropLast()) + "x"
        do {
            _ = try UAPISetRequest.parse("private_key=\(bad)\n")
            Issue.record("accepted")
        } catch {
            #expect(!error.message.contains(bad.prefix(16)))
            #expect(error.statusLine == "errno=-22")
        }
    }

    @Test("10 MB of lines and an over-long line are refused without parsing on")
    func sizeLimits() {
        let huge = String(repeating: "allowed_ip=10.0.0.0/8\n", count: 10_000_000 / 22)
        #expect(throws: UAPIError.self) { try UAPISetRequest.parse("public_key=\(Self.keyA)\n" + huge) }
        let long = "public_key=\(Self.keyA)\nendpoint=" + String(repeating: "1", count: 600) + "\n"
        #expect(throws: UAPIError(errno: 22, "line 2: longer than 512 bytes")) { try UAPISetRequest.parse(long) }
    }

    @Test("a get answer lists the interface, then each peer, in wireguard-go's key order, and ends with errno=0")
    func getAnswer() throws {
        let secret = Hex.decode(Self.secret)!.withUnsafeBytes { SecretKey(copying: $0) }
        let device = UAPIDevice(
            privateKey: secret, listenPort: 51820, fwmark: 0,
            peers: [
                UAPIDevice.Peer(
                    publicKey: Bytes32(Hex.decode(Self.keyA)!)!, presharedKey: nil,
                    endpoint: Endpoint(ipv4: 192, 0, 2, 1, port: 4000), lastHandshake: (1_700_000_000, 5),
                    receivedBytes: 10, sentBytes: 20, persistentKeepalive: 25,
                    allowedIPs: [IPPrefix("10.8.0.2/32")!, IPPrefix("fd00::2/128")!]),
                UAPIDevice.Peer(
                    publicKey: Bytes32(Hex.decode(Self.keyB)!)!, presharedKey: secret, endpoint: nil, lastHandshake: nil,
                    receivedBytes: 0, sentBytes: 0, persistentKeepalive: 0, allowedIPs: []),
            ])
        #expect(device.getResponse == """
            private_key=\(Self.secret)
            listen_port=51820
            public_key=\(Self.keyA)
            preshared_key=\(Self.zeros)
            protocol_version=1
            endpoint=192.0.2.1:4000
            last_handshake_time_sec=1700000000
            last_handshake_time_nsec=5
            tx_bytes=20
            rx_bytes=10
            persistent_keepalive_interval=25
            allowed_ip=10.8.0.2/32
            allowed_ip=fd00::2/128
            public_key=\(Self.keyB)
            preshared_key=\(Self.secret)
            protocol_version=1
            last_handshake_time_sec=0
            last_handshake_time_nsec=0
            tx_bytes=0
            rx_bytes=0
            persistent_keepalive_interval=0
            errno=0


            """)
    }
}
