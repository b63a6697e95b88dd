// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore

/// `MetricsListen` in [Interface]: an address and a port, IPv4 or bracketed IPv6; never a host name.
@Suite("Config: MetricsListen")
struct MetricsListenConfigTests {
    static func parse(_ line: String) throws(ConfigError) -> Config {
        try Config.parse(
            """
            [Interface]
            PrivateKey = \(TestKeys.private1)
            \(line)
            [Peer]
            PublicKey = \(TestKeys.public2)
            """, fileName: "m.conf")
    }

    @Test("absent by default; 127.0.0.1:9586 and [::1]:9586 parse (the key in any case)")
    func parses() throws {
        #expect(try Self.parse("").interface.metricsListen == nil)
        #expect(try Self.parse("MetricsListen = 127.0.0.1:9586").interface.metricsListen == Endpoint(ipv4: 127, 0, 0, 1, port: 9586))
        #expect(try Self.parse("metricslisten = [::1]:9586").interface.metricsListen == Endpoint("[::1]:9586"))
        #expect(try Self.parse("MetricsListen = 0.0.0.0:9100").interface.metricsListen == Endpoint(ipv4: 0, 0, 0, 0, port: 9100))
    }

    @Test("a bad value is one line naming the key, the line and the fix", arguments: [
        ("MetricsListen = localhost:9586", "host name"),
        ("MetricsListen = 127.0.0.1", "no port"),
        ("MetricsListen = 127.0.0.1:0", "not a port number"),
        ("MetricsListen = ::1:9586", "brackets"),
        ("MetricsListen = 300.1.1.1:9586", ""),
    ])
    func refused(line: String, expected: String) {
        #expect {
            _ = try Self.parse(line)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix("m.conf:3: MetricsListen ") && text.contains(expected) && !text.contains("\n")
        }
    }

    @Test("it belongs in [Interface]")
    func notInPeer() {
        #expect {
            _ = try Config.parse(
                """
                [Interface]
                PrivateKey = \(TestKeys.private1)
                [Peer]
                PublicKey = \(TestKeys.public2)
                MetricsListen = 127.0.0.1:9586
                """, fileName: "m.conf")
        } throws: { error in
            "\(error)".contains("MetricsListen belongs in [Interface]")
        }
    }
}
