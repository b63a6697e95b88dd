// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCommands
import VPNCore
import VPNCrypto
import VPNTesting

/// `vpnd peer add` and `remove` on text: addresses picked, blocks appended and taken out again.
@Suite("PeerProvisioning")
struct PeerProvisioningTests {
    static func key(_ seed: UInt64) -> SecretKey {
        var entropy = SeededEntropy(seed: seed)
        return X25519.generatePrivateKey(using: &entropy)
    }
    static let server = key(1)

    static func peers(_ allowed: [String]) -> [Config.Peer] {
        allowed.enumerated().map { index, prefix in
            Config.Peer(publicKey: X25519.publicKey(for: key(UInt64(10 + index))), allowedIPs: [IPPrefix(prefix)!], line: index + 1)
        }
    }

    static func prefixes(_ texts: String...) -> [IPPrefix] { texts.map { IPPrefix($0)! } }

    @Test func picksTheLowestFreeAddressInEachSubnet() throws {
        let interface = Self.prefixes("10.8.0.1/24", "fd00::1/64")
        #expect(try PeerProvisioning.freeAddresses(in: interface, peers: []) == Self.prefixes("10.8.0.2/24", "fd00::2/64"))
        let taken = Self.peers(["10.8.0.2/32", "10.8.0.4/30", "fd00::2/128"])
        #expect(try PeerProvisioning.freeAddresses(in: interface, peers: taken) == Self.prefixes("10.8.0.3/24", "fd00::3/64"))
        // A peer routing the whole subnet (or more) takes no address: the new host route wins.
        #expect(try PeerProvisioning.freeAddresses(in: interface, peers: Self.peers(["0.0.0.0/0", "10.8.0.0/24"]))
            == Self.prefixes("10.8.0.2/24", "fd00::2/64"))
        // The server need not be .1, and two addresses in one subnet give one client address.
        #expect(try PeerProvisioning.freeAddresses(in: Self.prefixes("10.9.0.2/29", "10.9.0.1/29"), peers: [])
            == Self.prefixes("10.9.0.3/29"))
    }

    @Test func aFullSubnetIsRefused() {
        // /30: .1 is the server, .2 is taken, .3 is the broadcast address.
        #expect(throws: PeerProvisioning.Failure("no free address left in 10.8.0.0/30; remove a peer, widen Address, or give --address IP")) {
            try PeerProvisioning.freeAddresses(in: Self.prefixes("10.8.0.1/30"), peers: Self.peers(["10.8.0.2/32"]))
        }
        #expect(throws: PeerProvisioning.Failure.self) { try PeerProvisioning.freeAddresses(in: Self.prefixes("10.8.0.1/32"), peers: []) }
        #expect(throws: PeerProvisioning.Failure.self) { try PeerProvisioning.freeAddresses(in: [], peers: []) }
    }

    @Test func givenAddressesMustBeFree() throws {
        let interface = Self.prefixes("10.8.0.1/24")
        try PeerProvisioning.check(addresses: Self.prefixes("10.8.0.9/24"), interfaceAddresses: interface, peers: Self.peers(["10.8.0.2/32"]))
        #expect(throws: PeerProvisioning.Failure.self) {
            try PeerProvisioning.check(addresses: Self.prefixes("10.8.0.2/24"), interfaceAddresses: interface, peers: Self.peers(["10.8.0.2/32"]))
        }
        #expect(throws: PeerProvisioning.Failure.self) {
            try PeerProvisioning.check(addresses: Self.prefixes("10.8.0.1/24"), interfaceAddresses: interface, peers: [])
        }
    }

    @Test(arguments: ["", "-x", "a b", "a\nb", "ünï", String(repeating: "a", count: 65), "a#b", "[Peer]"])
    func badNamesAreRefused(name: String) {
        #expect(throws: PeerProvisioning.Failure.self) { try PeerProvisioning.check(name: name) }
    }

    @Test func addThenRemoveGivesTheFileBack() throws {
        let original = """
            # office
            [Interface]
            PrivateKey = \(KeyEncoding.encode(Self.server))
            ListenPort = 51820
            Address = 10.8.0.1/24

            [Peer]
            # bob
            PublicKey = \(KeyEncoding.encode(X25519.publicKey(for: Self.key(2))))
            AllowedIPs = 10.8.0.2/32
            # a comment about what follows stays

            [Peer]
            PublicKey = \(KeyEncoding.encode(X25519.publicKey(for: Self.key(3))))
            AllowedIPs = 10.8.0.3/32

            """
        for withoutFinalNewline in [false, true] {
            let before = withoutFinalNewline ? String(original.dropLast()) : original
            let config = try Config.parse(before, fileName: "s.conf")
            let alice = X25519.publicKey(for: Self.key(4))
            let addresses = try PeerProvisioning.freeAddresses(in: config.interface.addresses, peers: config.peers)
            let after = PeerProvisioning.appending(
                PeerProvisioning.serverBlock(name: "alice", publicKey: alice, presharedKey: Self.key(5), addresses: addresses),
                to: before)
            #expect(after.hasPrefix(before))
            let added = try Config.parse(after, fileName: "s.conf")
            #expect(added.peers.count == 3)
            #expect(added.peers[2].name == "alice" && added.peers[2].publicKey == alice)
            #expect(added.peers[2].allowedIPs == Self.prefixes("10.8.0.4/32"))
            let removed = PeerProvisioning.removingSection(at: added.peers[2].line, from: after)
            #expect(removed == (withoutFinalNewline ? before + "\n" : before))
        }
        // Removing bob keeps the comment after his keys and everything else.
        let config = try Config.parse(original, fileName: "s.conf")
        let withoutBob = PeerProvisioning.removingSection(at: config.peers[0].line, from: original)
        #expect(withoutBob.contains("# a comment about what follows stays") && !withoutBob.contains("# bob"))
        let parsed = try Config.parse(withoutBob, fileName: "s.conf")
        #expect(parsed.peers.map(\.allowedIPs) == [Self.prefixes("10.8.0.3/32")])
    }

    @Test func clientFiles() throws {
        var file = PeerProvisioning.ClientFile(
            name: "alice", privateKey: Self.key(4), addresses: Self.prefixes("10.8.0.2/24"),
            serverPublicKey: X25519.publicKey(for: Self.server), presharedKey: nil, endpoint: "vpn.example.com:51820",
            allowedIPs: Self.prefixes("10.8.0.0/24"), dns: [], persistentKeepalive: 25, mode: .tun, transport: .udp, mtu: 1420)
        let text = try PeerProvisioning.clientText(file, format: .vpnd, serverName: "vpnd0")
        let parsed = try Config.parse(text, fileName: "alice.conf")
        try parsed.validate(role: .client)
        #expect(parsed.peers[0].publicKey == X25519.publicKey(for: Self.server))
        #expect(parsed.peers[0].persistentKeepalive == 25)
        #expect(parsed.interface.addresses == Self.prefixes("10.8.0.2/24"))

        file.dns = ["10.8.0.1"]
        let withDNS = try Config.parse(try PeerProvisioning.clientText(file, format: .vpnd, serverName: "vpnd0"), fileName: "a.conf")
        #expect(withDNS.interface.host.dnsServers == [IPAddress("10.8.0.1")!])
        #expect(try PeerProvisioning.clientText(file, format: .wgQuick, serverName: "vpnd0").contains("\nDNS = 10.8.0.1\n"))
        file.dns = []
        file.mode = .tap
        file.transport = .tcp
        #expect(throws: PeerProvisioning.Failure.self) { try PeerProvisioning.clientText(file, format: .wgQuick, serverName: "vpnd0") }
        let tap = try Config.parse(try PeerProvisioning.clientText(file, format: .vpnd, serverName: "vpnd0"), fileName: "a.conf")
        #expect(tap.interface.mode == .tap && tap.interface.transport == .tcp)
        #expect(tap.interface.cipher == .chaCha20Poly1305)

        // An AES-256-GCM server's client repeats the Cipher; WireGuard's apps cannot take it.
        file.mode = .tun
        file.transport = .udp
        file.cipher = .aes256GCM
        #expect {
            try PeerProvisioning.clientText(file, format: .wgQuick, serverName: "vpnd0")
        } throws: { "\($0)".contains("Cipher = aes256gcm, which WireGuard's apps do not speak; use --format vpnd") }
        let aes = try Config.parse(try PeerProvisioning.clientText(file, format: .vpnd, serverName: "vpnd0"), fileName: "a.conf")
        #expect(aes.interface.cipher == .aes256GCM)
    }

    @Test func theQRCodeHoldsAConfigAndDrawsEveryModule() throws {
        let text = String(repeating: "PrivateKey = cJXddfPZJvCG8D2xvoyEd+vbD8+f6FeojvMeUVVuan0=\n", count: 8)
        let code = try #require(QRCode(text))
        #expect(code.width >= 21 && (code.width - 17) % 4 == 0)
        let drawing = code.terminalText(margin: 4)
        let lines = drawing.split(separator: "\n")
        #expect(lines.count == (code.width + 8 + 1) / 2)
        // Each line: the colour prefix, one character per module column, the reset.
        #expect(lines.allSatisfy { $0.unicodeScalars.count == code.width + 8 + "\u{1B}[40;37;1m\u{1B}[0m".unicodeScalars.count })
        #expect(QRCode(String(repeating: "x", count: 3000)) == nil)
    }
}
