// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNCore
import VPNCrypto

/// Test-only keys (made with `wg genkey`; never used anywhere else).
enum TestKeys {
    static let private1 = "oBY0tNoz5nZ6zo+gqEiXTV0gEGrqBWxN2V7nMILnzFQ="
    static let public2 = "OGJd7ave8nwmpFXaF0jzJp8zM1PomX/O7O3PUP1ucnU="
    static let public3 = "qOqjg1wUfpO+w9gbeoL1Pa2kYy6CWOXV0Cw5kv+ZmEM="
    static let public4 = "QM3i2KY5+vNICSGssyShtdr156or+oMAfBn36py4+lo="
    static let psk = "41BxDRNw2NNKYnQD50FDeDa+bm0uWtmO22OskbPL9B0="

    static func bytes(_ text: String) -> [UInt8] { [UInt8](Data(base64Encoded: text)!) }
    static func secret(_ text: String) -> Config.KeySource { .key(SecretKey(bytes(text))!) }
    static func publicKey(_ text: String) -> Bytes32 { Bytes32(bytes(text))! }
}

func prefix(_ text: String) -> IPPrefix { IPPrefix(text)! }
func endpoint(_ text: String) -> EndpointSpec { EndpointSpec(text)! }

/// A valid file and the model it must give.
struct ValidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var expected: Config
    var testDescription: String { name }
}

struct ConfigParserTests {
    static let valid: [ValidCase] = [
        ValidCase(
            name: "server",
            text: """
                [Interface]
                PrivateKeyFile = keys/server.key
                Address = 10.8.0.1/24
                ListenPort = 51820

                [Peer]
                PublicKey = \(TestKeys.public2)
                PresharedKeyFile = keys/psk
                AllowedIPs = 10.8.0.2/32
                """,
            expected: Config(
                fileName: "x.conf",
                interface: .init(privateKey: .file("keys/server.key"), addresses: [prefix("10.8.0.1/24")], listenPort: 51820),
                peers: [.init(publicKey: TestKeys.publicKey(TestKeys.public2), presharedKey: .file("keys/psk"),
                              allowedIPs: [prefix("10.8.0.2/32")], line: 6)])),
        ValidCase(
            name: "client with comments, odd case and spacing",
            text: """
                \u{FEFF}# vpnd client

                [interface]   # the local side
                privatekey=\(TestKeys.private1)
                  ADDRESS =  10.8.0.2/24 , fd00::2/64  \r
                mtu = 1380
                transport = TCP
                mode = TUN

                [PEER]
                PublicKey = \(TestKeys.public2)
                PresharedKey = \(TestKeys.psk)
                AllowedIPs = 0.0.0.0/0, ::/0
                Endpoint = vpn.example.net:51820   # resolved by the daemon
                PersistentKeepalive = 25
                """,
            expected: Config(
                fileName: "x.conf",
                interface: .init(privateKey: TestKeys.secret(TestKeys.private1),
                                 addresses: [prefix("10.8.0.2/24"), prefix("fd00::2/64")], mtu: 1380, transport: .tcp),
                peers: [.init(publicKey: TestKeys.publicKey(TestKeys.public2), presharedKey: TestKeys.secret(TestKeys.psk),
                              allowedIPs: [prefix("0.0.0.0/0"), prefix("::/0")],
                              endpoint: .hostName("vpn.example.net", port: 51820), persistentKeepalive: 25, line: 10)])),
        ValidCase(
            name: "tap with bridge, user and name",
            text: """
                [Interface]
                PrivateKey = \(TestKeys.private1)
                ListenPort = 443
                Mode = tap
                Bridge = br0
                Name = vpn-tap.1
                User = nobody
                [Peer]
                PublicKey = \(TestKeys.public2)
                Endpoint = 198.18.0.1:443
                PersistentKeepalive = off
                """,
            expected: Config(
                fileName: "x.conf",
                interface: .init(privateKey: TestKeys.secret(TestKeys.private1), listenPort: 443, mode: .tap,
                                 name: "vpn-tap.1", bridge: "br0", user: "nobody"),
                peers: [.init(publicKey: TestKeys.publicKey(TestKeys.public2), endpoint: endpoint("198.18.0.1:443"), line: 8)])),
        ValidCase(
            name: "IPv6 endpoints, several peers, repeated keys, masking",
            text: """
                [Interface]
                PrivateKey = \(TestKeys.private1)
                Address = fd00::1/64
                Address = 10.8.0.1/24
                ListenPort = 65535
                MTU = 1280

                [Peer]
                PublicKey = \(TestKeys.public2)
                AllowedIPs = 10.8.0.2/32
                AllowedIPs = fd00::2/128, 10.8.0.2, 10.9.7.7/16
                Endpoint = [2001:DB8::1]:51820
                PersistentKeepalive = 0

                [Peer]
                PublicKey = \(TestKeys.public3)
                AllowedIPs = 10.8.0.3/32
                Endpoint = [::ffff:198.18.0.9]:1

                [Peer]
                PublicKey = \(TestKeys.public4)
                """,
            expected: Config(
                fileName: "x.conf",
                interface: .init(privateKey: TestKeys.secret(TestKeys.private1),
                                 addresses: [prefix("fd00::1/64"), prefix("10.8.0.1/24")], listenPort: 65535, mtu: 1280),
                peers: [
                    .init(publicKey: TestKeys.publicKey(TestKeys.public2),
                          allowedIPs: [prefix("10.8.0.2/32"), prefix("fd00::2/128"), prefix("10.9.0.0/16")],
                          endpoint: .address(Endpoint(IPAddress("2001:db8::1")!, port: 51820)), line: 8),
                    .init(publicKey: TestKeys.publicKey(TestKeys.public3), allowedIPs: [prefix("10.8.0.3/32")],
                          endpoint: .address(Endpoint(ipv4: 198, 18, 0, 9, port: 1)), line: 15),
                    .init(publicKey: TestKeys.publicKey(TestKeys.public4), line: 20),
                ])),
    ]

    @Test(arguments: valid)
    func parsesValidFile(_ item: ValidCase) throws {
        let config = try Config.parse(item.text, fileName: "x.conf")
        #expect(config == item.expected)
        #expect(config.interface.privateKey == item.expected.interface.privateKey)
    }

    @Test func privateKeyNeverPrints() throws {
        let config = try Config.parse(Self.base(), fileName: "x.conf")
        let dumped = "\(config) \(String(reflecting: config))"
        #expect(!dumped.contains(TestKeys.private1))
        #expect(!dumped.contains(Hex.encode(TestKeys.bytes(TestKeys.private1))))
        #expect(dumped.contains("<redacted>"))
    }

    // MARK: - Errors

    /// A valid file with `interfaceLine` as line 4 and `peerLine` as line 8.
    static func base(interfaceLine: String = "", peerLine: String = "") -> String {
        """
        [Interface]
        PrivateKey = \(TestKeys.private1)
        ListenPort = 51820
        \(interfaceLine)
        [Peer]
        PublicKey = \(TestKeys.public2)
        AllowedIPs = 10.8.0.2/32
        \(peerLine)
        """
    }

    /// A line to add to [Interface] (line 4), and the exact message.
    static let badInterfaceLines: [(String, String)] = [
        ("ListenPort = 1", "x.conf:4: ListenPort is set twice (first at line 3)"),
        ("Adress = 10.8.0.1/24", "x.conf:4: unknown key \"Adress\" in [Interface] (did you mean \"Address\"?)"),
        ("Port = 1", "x.conf:4: unknown key \"Port\" in [Interface] (did you mean \"ListenPort\"?)"),
        ("Colour = blue", "x.conf:4: unknown key \"Colour\" in [Interface]"),
        ("PublicKey = \(TestKeys.public3)", "x.conf:4: PublicKey belongs in [Peer], not in [Interface]"),
        ("DNS = 10.0.0.1/24", "x.conf:4: DNS \"10.0.0.1/24\" is neither an IP address nor a search domain"),
        ("SaveConfig = true", "x.conf:4: SaveConfig = true is not supported: vpnd never rewrites its config file when it stops; remove the line (`wg showconf NAME` prints the running configuration)"),
        ("Table = 255", "x.conf:4: Table \"255\" is not a usable routing table (1 to 4294967295, not 253 or 255)"),
        ("FwMark = 0x1ffffffff", "x.conf:4: FwMark \"0x1ffffffff\" is not off, a number or 0x hex of 32 bits"),
        ("KillSwitch = maybe", "x.conf:4: KillSwitch \"maybe\" is not off, on or persistent"),
        ("AllowLAN = on", "x.conf:4: AllowLAN needs KillSwitch = on or persistent (without a kill switch the LAN is reachable anyway)"),
        ("Masquerade = eth0", "x.conf:4: Masquerade needs Forward = on (there is nothing to NAT without forwarding)"),
        ("PrivateKeyFile = a.key", "x.conf:4: PrivateKeyFile and PrivateKey (line 2) are both set; keep one"),
        ("Address = 10.8.0.1/33", "x.conf:4: Address \"10.8.0.1/33\" has a bad prefix length (0-32 for IPv4)"),
        ("Address = fd00::1/129", "x.conf:4: Address \"fd00::1/129\" has a bad prefix length (0-128 for IPv6)"),
        ("Address = 10.8.0/24", "x.conf:4: Address \"10.8.0/24\" does not start with a valid IPv4 or IPv6 address"),
        ("Address = 10.8.0.1/24,", "x.conf:4: Address has an empty entry in \"10.8.0.1/24,\" (check the commas)"),
        ("Address = fe80::1%eth0/64", "x.conf:4: Address \"fe80::1%eth0/64\" has an IPv6 zone (%...), which is not allowed here"),
        ("Address =", "x.conf:4: Address has no value"),
        ("MTU = 500", "x.conf:4: MTU \"500\" is not a number between 576 and 65535"),
        ("MTU = 65536", "x.conf:4: MTU \"65536\" is not a number between 576 and 65535"),
        ("MTU = 1420 bytes", "x.conf:4: MTU \"1420 bytes\" is not a number between 576 and 65535"),
        ("Mode = tan", "x.conf:4: Mode \"tan\" is not tun or tap"),
        ("Transport = sctp", "x.conf:4: Transport \"sctp\" is not udp, tcp or auto (auto: both, the same as udp,tcp)"),
        ("Name = a-very-long-interface", "x.conf:4: Name \"a-very-long-interface\" is too long (21 characters; Linux allows 15)"),
        ("Name = vpn/0", "x.conf:4: Name \"vpn/0\" is not an interface name (letters, digits, \"_\", \".\" and \"-\")"),
        ("Bridge = br 0", "x.conf:4: Bridge \"br 0\" is not an interface name (letters, digits, \"_\", \".\" and \"-\")"),
        ("Bridge = br0", "x.conf:4: Bridge is only valid with Mode = tap"),
        ("User = root user", "x.conf:4: User \"root user\" is not a user name"),
        ("MTU = 1000\nAddress = fd00::1/64",
         "x.conf:4: MTU 1000 is below 1280, the minimum for IPv6, and Address fd00::1/64 is IPv6"),
        ("Transport = tcp\nMTU = 65490",
         "x.conf:5: MTU 65490 is too large for Transport = tcp (at most 65489: a TCP frame holds 65535 bytes); lower MTU or use Transport = udp"),
        ("MTU = 65535\nTransport = tcp",
         "x.conf:4: MTU 65535 is too large for Transport = tcp (at most 65489: a TCP frame holds 65535 bytes); lower MTU or use Transport = udp"),
        ("Transport = auto\nMTU = 65490",
         "x.conf:5: MTU 65490 is too large for Transport = auto (at most 65489: a TCP frame holds 65535 bytes); lower MTU or use Transport = udp"),
        ("Transport = udp,udp", "x.conf:4: Transport \"udp,udp\" is not udp, tcp or auto (auto: both, the same as udp,tcp)"),
        ("Transport = udp,tcp,tcp", "x.conf:4: Transport \"udp,tcp,tcp\" is not udp, tcp or auto (auto: both, the same as udp,tcp)"),
        ("ListenPort 51821", "x.conf:4: expected \"Key = Value\" or \"[Section]\""),
        ("= 5", "x.conf:4: a line starts with \"=\" (expected \"Key = Value\")"),
        ("[Interface]", "x.conf:4: [Interface] appears twice (first at line 1)"),
        ("[Peers]", "x.conf:4: unknown section [Peers] (did you mean [Peer]?); sections are [Interface] and [Peer]"),
        ("[Peer", "x.conf:4: section header \"[Peer\" has no closing \"]\""),
    ]

    @Test(arguments: badInterfaceLines)
    func rejectsInterfaceLine(line: String, message: String) {
        Self.expectError(Self.base(interfaceLine: line), message)
    }

    /// A line to add to [Peer] (line 8), and the exact message.
    static let badPeerLines: [(String, String)] = [
        ("PublicKey = \(TestKeys.public3)", "x.conf:8: PublicKey is set twice (first at line 6)"),
        ("ListenPort = 51820", "x.conf:8: ListenPort belongs in [Interface], not in [Peer]"),
        ("AllowedIP = 10.0.0.0/8", "x.conf:8: unknown key \"AllowedIP\" in [Peer] (did you mean \"AllowedIPs\"?)"),
        ("Keepalive = 25", "x.conf:8: unknown key \"Keepalive\" in [Peer] (did you mean \"PersistentKeepalive\"?)"),
        ("PresharedKey = not-base64", "x.conf:8: PresharedKey the value (not shown) is not a base64 key of 32 bytes (44 characters, as `wg genkey` prints)"),
        ("PresharedKey = \(TestKeys.psk)\nPresharedKeyFile = p", "x.conf:9: PresharedKeyFile and PresharedKey (line 8) are both set; keep one"),
        ("AllowedIPs = 10.8.0.0/24, 300.1.1.1/32", "x.conf:8: AllowedIPs \"300.1.1.1/32\" does not start with a valid IPv4 or IPv6 address"),
        ("AllowedIPs = 10.8.0.0/24 10.9.0.0/24", "x.conf:8: AllowedIPs \"10.8.0.0/24 10.9.0.0/24\" has a bad prefix length (0-32 for IPv4)"),
        ("Endpoint = 198.18.0.1", "x.conf:8: Endpoint \"198.18.0.1\" has no port (write HOST:PORT or [IPv6]:PORT)"),
        ("Endpoint = 198.18.0.1:0", "x.conf:8: Endpoint \"198.18.0.1:0\" has port \"0\", which is not a port number (1-65535)"),
        ("Endpoint = 198.18.0.1:65536", "x.conf:8: Endpoint \"198.18.0.1:65536\" has port \"65536\", which is not a port number (1-65535)"),
        ("Endpoint = 198.18.0.256:1", "x.conf:8: Endpoint \"198.18.0.256:1\" does not have a valid IPv4 address (four numbers 0-255, no leading zeros)"),
        ("Endpoint = fd00::1:51820", "x.conf:8: Endpoint \"fd00::1:51820\" needs brackets around an IPv6 address, as in [fd00::1]:51820"),
        ("Endpoint = [fd00::1]", "x.conf:8: Endpoint \"[fd00::1]\" has no port (write [IPv6]:PORT)"),
        ("Endpoint = [fd00::1:51820", "x.conf:8: Endpoint \"[fd00::1:51820\" has \"[\" without \"]\" (write [IPv6]:PORT)"),
        ("Endpoint = [1.2.3.4]:1", "x.conf:8: Endpoint \"[1.2.3.4]:1\" has no valid IPv6 address inside the brackets"),
        ("Endpoint = [fe80::1%eth0]:1", "x.conf:8: Endpoint \"[fe80::1%eth0]:1\" has an IPv6 zone (%...), which vpnd does not support; use a global address"),
        ("Endpoint = bad_host!.example:1", "x.conf:8: Endpoint \"bad_host!.example:1\" does not have a valid host name or IP address"),
        ("Endpoint = :51820", "x.conf:8: Endpoint \":51820\" has no host before the port"),
        ("PersistentKeepalive = 70000", "x.conf:8: PersistentKeepalive \"70000\" is not a number of seconds (0-65535) or \"off\""),
        ("PersistentKeepalive = -1", "x.conf:8: PersistentKeepalive \"-1\" is not a number of seconds (0-65535) or \"off\""),
        ("[Peer]\nPublicKey = \(TestKeys.public3)\nAllowedIPs = 10.8.0.2/32",
         "x.conf:10: AllowedIPs 10.8.0.2/32 is already routed to the [Peer] at line 5"),
        ("[Peer]\nPublicKey = \(TestKeys.public2)", "x.conf:9: this PublicKey is already used by the [Peer] at line 5"),
        ("[Peer]\nAllowedIPs = 10.8.0.3/32", "x.conf:8: [Peer] has no PublicKey"),
    ]

    @Test(arguments: badPeerLines)
    func rejectsPeerLine(line: String, message: String) {
        Self.expectError(Self.base(peerLine: line), message)
    }

    /// Whole files, and the exact message.
    static let badFiles: [(String, String)] = [
        ("ListenPort = 1\n[Interface]", "x.conf:1: \"ListenPort\" comes before any section; start the file with [Interface]"),
        ("", "x.conf: no [Interface] section; the file must have one, with PrivateKey or PrivateKeyFile"),
        ("# only a comment\n\n", "x.conf: no [Interface] section; the file must have one, with PrivateKey or PrivateKeyFile"),
        ("[Interface]\nListenPort = 1\n[Peer]\nPublicKey = \(TestKeys.public2)", "x.conf: [Interface] needs PrivateKey or PrivateKeyFile"),
        ("[Interface]\nPrivateKeyFile = k", "x.conf: no [Peer] section; add one for the remote host, with its PublicKey"),
        ("[Interface]\nPrivateKey = \(TestKeys.private1.dropLast())", "x.conf:2: PrivateKey the value (not shown) is not a base64 key of 32 bytes (44 characters, as `wg genkey` prints)"),
        ("[Interface]\nPrivateKeyFile = k\n[Peer]\nPublicKey = AAAA", "x.conf:4: PublicKey \"AAAA\" is not a base64 key of 32 bytes (44 characters, as `wg genkey` prints)"),
        // 'R' instead of 'Q' as the 43rd character sets a bit past the 32 bytes.
        ("[Interface]\nPrivateKeyFile = k\n[Peer]\nPublicKey = \(TestKeys.public4.dropLast(2))m=",
         "x.conf:4: PublicKey \"\(TestKeys.public4.dropLast(2))m=\" is not a base64 key of 32 bytes (44 characters, as `wg genkey` prints)"),
        ("[Interface]\nPrivateKeyFile = k\nMode = tap\n[Peer]\nPublicKey = \(TestKeys.public2)\n[Peer]\nPublicKey = \(TestKeys.public3)",
         "x.conf:6: tap mode allows exactly one [Peer] (the first is at line 4)"),
        ("[Interface]\nPrivateKeyFile = k\nListenPort = 70000", "x.conf:3: ListenPort \"70000\" is not a port number (1-65535)"),
        ("[Interface]\nPrivateKeyFile = k\nListenPort = 0", "x.conf:3: ListenPort \"0\" is not a port number (1-65535)"),
        ("[Interface]\nPrivateKeyFile = k\nListenPort = 051820", "x.conf:3: ListenPort \"051820\" is not a port number (1-65535)"),
    ]

    @Test(arguments: badFiles)
    func rejectsFile(text: String, message: String) {
        Self.expectError(text, message)
    }

    static func expectError(_ text: String, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let config = try Config.parse(text, fileName: "x.conf")
            Issue.record("parsed, expected \(message): \(config)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description == message, sourceLocation: sourceLocation)
        }
    }

    @Test func errorDescriptions() {
        #expect(ConfigError(fileName: "a.conf", line: 3, message: "m").description == "a.conf:3: m")
        #expect(ConfigError(fileName: "a.conf", line: 0, message: "m").description == "a.conf: m")
        #expect(ConfigError(fileName: "", line: 3, message: "m").description == "line 3: m")
        #expect(ConfigError(fileName: "", line: 0, message: "--mtu: m").description == "--mtu: m")
    }

    @Test func errorsNeverShowSecrets() {
        let lines = [
            "PrivateKey = \(TestKeys.private1)x",
            "\(TestKeys.private1)",
            "PrivateKeyFile = \(TestKeys.private1)",
        ]
        for line in lines {
            let text = "[Interface]\n\(line)\nPrivateKey = \(TestKeys.private1)\n"
            do {
                _ = try Config.parse(text, fileName: "x.conf")
                Issue.record("parsed \(line)")
            } catch {
                #expect(!error.description.contains(TestKeys.private1), "\(error)")
            }
        }
    }

    // MARK: - Routing table, roles, overrides

    @Test func routingTableUsesPeerIndexes() throws {
        let config = try Config.parse(Self.valid[3].text, fileName: "x.conf")
        let table = config.routingTable()
        #expect(table.lookup(IPAddress("10.8.0.2")!) == 0)
        #expect(table.lookup(IPAddress("10.9.200.1")!) == 0)
        #expect(table.lookup(IPAddress("10.8.0.3")!) == 1)
        #expect(table.lookup(IPAddress("10.8.0.4")!) == nil)
        #expect(table.lookup(IPAddress("fd00::2")!) == 0)
        let tap = try Config.parse(Self.valid[2].text, fileName: "x.conf")
        #expect(tap.routingTable().entries.isEmpty)
    }

    @Test func peerNamesComeFromTheirComments() throws {
        let text = """
            [Interface]
            PrivateKey = \(TestKeys.private1)
            ListenPort = 51820
            # not a peer's name
            [Peer] # alice
            # a second comment is not the name
            PublicKey = \(TestKeys.public2)
            # nor is one after a key
            [Peer]

            ## Name = bob smith
            PublicKey = \(TestKeys.public3)
            [Peer]
            PublicKey = \(TestKeys.public4)
            # carol (after the key: no name)
            """
        let config = try Config.parse(text, fileName: "server.conf")
        #expect(config.peers.map(\.name) == ["alice", "bob smith", nil])
    }

    @Test func hostKeysHaveWgQuickMeanings() throws {
        let text = """
            [Interface]
            PrivateKey = \(TestKeys.private1)
            DNS = 10.8.0.1, fd00::53, corp.example
            dns = lab.example
            Table = 1234
            FwMark = 0xca6c
            PreUp = echo pre %i
            PostUp = ip rule add fwmark=1 table 7 # a comment
            PostUp = echo second
            PreDown = echo down
            PostDown = echo gone
            SaveConfig = false
            KillSwitch = persistent
            AllowLAN = on
            Forward = on
            Masquerade = eth0
            [Peer]
            PublicKey = \(TestKeys.public2)
            AllowedIPs = 0.0.0.0/0
            """
        let host = try Config.parse(text, fileName: "x.conf").interface.host
        #expect(host.dnsServers == [IPAddress("10.8.0.1")!, IPAddress("fd00::53")!])
        #expect(host.dnsSearch == ["corp.example", "lab.example"])
        #expect(host.table == .number(1234) && host.fwMark == 0xCA6C)
        #expect(host.preUp == ["echo pre %i"] && host.postUp == ["ip rule add fwmark=1 table 7", "echo second"])
        #expect(host.preDown == ["echo down"] && host.postDown == ["echo gone"])
        #expect(host.killSwitch == .persistent && host.allowLAN && host.forward && host.masquerade == "eth0")
        let defaults = try Config.parse(Self.valid[0].text, fileName: "x.conf").interface.host
        #expect(defaults.isDefault && defaults.table == .auto)
        #expect(try Config.parse(text.replacingOccurrences(of: "Table = 1234", with: "Table = off"), fileName: "x.conf").interface.host.table == .off)
    }

    @Test func roles() throws {
        let server = try Config.parse(Self.valid[0].text, fileName: "server.conf")
        try server.validate(role: .server)
        #expect(throws: ConfigError(fileName: "server.conf", line: 0,
                                    message: "vpnd --client needs a [Peer] with an Endpoint (or --endpoint HOST:PORT)")) {
            try server.validate(role: .client)
        }
        let client = try Config.parse(Self.valid[1].text, fileName: "client.conf")
        try client.validate(role: .client)
        #expect(throws: ConfigError(fileName: "client.conf", line: 0,
                                    message: "vpnd --server needs ListenPort in [Interface] (or --listen-port PORT)")) {
            try client.validate(role: .server)
        }
    }

    @Test(arguments: ["auto", "AUTO", "udp,tcp", "tcp,udp", "udp, tcp", " TCP , UDP "])
    func autoTransportSpellings(value: String) throws {
        let config = try Config.parse(Self.base(interfaceLine: "Transport = \(value)"), fileName: "x.conf")
        #expect(config.interface.transport == .auto)
        #expect(config.interface.transport.carriesUDP && config.interface.transport.carriesTCP)
    }

    @Test func overridesReplaceValues() throws {
        let client = try Config.parse(Self.valid[1].text, fileName: "client.conf")
        let changed = try client.applying(ConfigOverrides(
            listenPort: "4000", endpoint: "[fd00::9]:443", mode: "tun", transport: "udp", mtu: "1300", name: "wg7"))
        #expect(changed.interface.listenPort == 4000)
        #expect(changed.peers[0].endpoint == .address(Endpoint(IPAddress("fd00::9")!, port: 443)))
        #expect(changed.interface.transport == .udp)
        #expect(changed.interface.mtu == 1300)
        #expect(changed.interface.name == "wg7")
        #expect(try client.applying(ConfigOverrides()) == client)
        try changed.validate(role: .server)
    }

    static let badOverrides: [(ConfigOverrides, String)] = [
        (ConfigOverrides(listenPort: "0"), "--listen-port: \"0\" is not a port number (1-65535)"),
        (ConfigOverrides(listenPort: "http"), "--listen-port: \"http\" is not a port number (1-65535)"),
        (ConfigOverrides(endpoint: "host"), "--endpoint: \"host\" has no port (write HOST:PORT or [IPv6]:PORT)"),
        (ConfigOverrides(mode: "tup"), "--mode: \"tup\" is not tun or tap"),
        (ConfigOverrides(transport: "quic"), "--transport: \"quic\" is not udp, tcp or auto (auto: both, the same as udp,tcp)"),
        (ConfigOverrides(mtu: "100"), "--mtu: \"100\" is not a number between 576 and 65535"),
        (ConfigOverrides(mtu: "1000"), "--mtu: 1000 is below 1280, the minimum for IPv6, and Address fd00::2/64 is IPv6"),
        (ConfigOverrides(name: "this-name-is-too-long"), "--name: \"this-name-is-too-long\" is too long (21 characters; Linux allows 15)"),
    ]

    /// `Transport = tcp` with the largest MTU it carries: its largest frame is exactly what the 2-byte
    /// length prefix allows (one more byte of MTU trapped in TCPDeframer.init on the first connection).
    @Test func tcpTakesTheLargestMTUItCarries() throws {
        let config = try Config.parse(Self.base(interfaceLine: "Transport = tcp\nMTU = 65489"), fileName: "x.conf")
        #expect(config.interface.mtu == Config.maximumTCPMTU)
        let mtu = Config.maximumTCPMTU
        #expect(TransportData.messageSize(forPacketLength: mtu + 14, mtu: mtu + 14) == Spec.maximumTCPFrameLength)
        // Over UDP the same MTU is accepted (datagrams are fragmented by the kernel instead).
        let udp = try Config.parse(Self.base(interfaceLine: "MTU = 65535"), fileName: "x.conf")
        #expect(udp.interface.mtu == 65535)
        #expect(throws: ConfigError(fileName: "", line: 0, message:
            "--transport: tcp carries an MTU of at most 65489, and x.conf has MTU 65535; lower MTU (or --mtu) or use udp"))
        {
            try udp.applying(ConfigOverrides(transport: "tcp"))
        }
        #expect(throws: ConfigError(fileName: "", line: 0, message:
            "--mtu: 65490 is too large for Transport = tcp (at most 65489: a TCP frame holds 65535 bytes); lower it or use Transport = udp"))
        {
            try config.applying(ConfigOverrides(mtu: "65490"))
        }
        #expect(try config.applying(ConfigOverrides(mtu: "65489")).interface.mtu == 65489)
        #expect(try udp.applying(ConfigOverrides(transport: "tcp", mtu: "1420")).interface.mtu == 1420)
    }

    @Test(arguments: badOverrides)
    func rejectsOverride(overrides: ConfigOverrides, message: String) throws {
        let client = try Config.parse(Self.valid[1].text, fileName: "client.conf")
        #expect(throws: ConfigError(fileName: "", line: 0, message: message)) { try client.applying(overrides) }
    }

    @Test func overridesCheckAcrossKeys() throws {
        let several = try Config.parse(Self.valid[3].text, fileName: "x.conf")
        #expect(throws: ConfigError(fileName: "", line: 0, message: "--endpoint: x.conf has 3 [Peer]s; set Endpoint in each [Peer] instead")) {
            try several.applying(ConfigOverrides(endpoint: "1.2.3.4:5"))
        }
        #expect(throws: ConfigError(fileName: "", line: 0, message: "--mode: tap mode allows exactly one [Peer], and x.conf has 3")) {
            try several.applying(ConfigOverrides(mode: "tap"))
        }
        let tap = try Config.parse(Self.valid[2].text, fileName: "tap.conf")
        #expect(throws: ConfigError(fileName: "", line: 0, message: "--mode: tun mode cannot use the Bridge set in tap.conf; remove Bridge or use --mode tap")) {
            try tap.applying(ConfigOverrides(mode: "tun"))
        }
    }

    @Test(arguments: [
        ("vpn.example.net:51820", "vpn.example.net:51820"),
        ("localhost:1", "localhost:1"),
        ("Host-1.example.:65535", "Host-1.example.:65535"),
        ("10.0.0.1:51820", "10.0.0.1:51820"),
        ("[fd00::1]:51820", "[fd00::1]:51820"),
    ])
    func endpointSpecs(text: String, description: String) throws {
        let spec = try #require(EndpointSpec(text))
        #expect(spec.description == description)
        #expect(EndpointSpec(spec.description) == spec)
    }

    @Test func hostNameLimits() {
        #expect(EndpointSpec(String(repeating: "a", count: 63) + ".net:1") != nil)
        #expect(EndpointSpec(String(repeating: "a", count: 64) + ".net:1") == nil)
        #expect(EndpointSpec("-a.net:1") == nil)
        #expect(EndpointSpec("a..net:1") == nil)
    }
}

struct ConfigLineEndingTests {
    @Test func crlfFilesCountLinesLikeLF() throws {
        let lf = ConfigParserTests.base(peerLine: "Endpoint = 10.0.0.1:51820")
        let crlf = lf.replacingOccurrences(of: "\n", with: "\r\n")
        #expect(try Config.parse(crlf, fileName: "x.conf") == Config.parse(lf, fileName: "x.conf"))
        let broken = ConfigParserTests.base(peerLine: "MTU = 1").replacingOccurrences(of: "\n", with: "\r\n")
        #expect(throws: ConfigError(fileName: "x.conf", line: 8, message: "MTU belongs in [Interface], not in [Peer]")) {
            try Config.parse(broken, fileName: "x.conf")
        }
    }
}
