// SPDX-License-Identifier: MIT
import Testing
import VPNBasics

struct IPAddressTests {
    /// Text, then its canonical form (RFC 5952 for IPv6).
    static let valid: [(String, String)] = [
        ("0.0.0.0", "0.0.0.0"),
        ("10.8.0.1", "10.8.0.1"),
        ("255.255.255.255", "255.255.255.255"),
        ("192.0.2.33", "192.0.2.33"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("fd00::1", "fd00::1"),
        ("FD00:0:0:0:0:0:0:1", "fd00::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:db8::1:0:0:0:1", "2001:db8:0:1::1"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ("::192.0.2.1", "::c000:201"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("fe80::", "fe80::"),
    ]

    @Test(arguments: valid)
    func parsesAndFormats(text: String, canonical: String) throws {
        let address = try #require(IPAddress(text))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)
    }

    static let invalid: [String] = [
        "", " ", "1.2.3", "1.2.3.4.5", "1.2.3.256", "01.2.3.4", "1.2.3.04", "1.2.3.-1", "1..2.3",
        ".1.2.3", "1.2.3.4.", "1.2.3.4 ", " 1.2.3.4", "1.2.3.4/32", "0x1.2.3.4", "1.2.3.1000",
        "::1::", "1::2::3", ":::", ":1::", "1::2:", ":", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "12345::", "g::1", "fe80::1%eth0", "fe80::1%2",
        "1.2.3.4::", "::1.2.3.4:5", "::1.2.3", "[::1]", "localhost", "1:2:3:4:5:6:7:1.2.3.4",
    ]

    @Test(arguments: invalid)
    func rejects(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func numericValues() {
        #expect(IPAddress("10.8.0.1") == .v4(0x0A08_0001))
        #expect(IPAddress(ipv4: 10, 8, 0, 1) == .v4(0x0A08_0001))
        #expect(IPAddress("2001:db8::ff00:42:8329") == .v6(0x2001_0DB8_0000_0000, 0x0000_FF00_0042_8329))
        #expect(IPAddress("10.8.0.1")!.bytes == [10, 8, 0, 1])
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 15) + [1]) == IPAddress("::1"))
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func mappedFormMatchesEndpoint() {
        let endpoint = Endpoint(ipv4: 198, 18, 0, 1, port: 51820)
        #expect(endpoint.ipAddress == IPAddress("198.18.0.1"))
        #expect(Endpoint(IPAddress("198.18.0.1")!, port: 51820) == endpoint)
        let v6 = IPAddress("fd00::1:2")!
        let e6 = Endpoint(v6, port: 7)
        #expect(e6.addressBytes == v6.bytes)
        #expect(e6.ipAddress == v6)
        // IPv6 text for a mapped address stays v6, but goes through the mapped form as v4.
        let mappedText = IPAddress("::ffff:1.2.3.4")!
        #expect(!mappedText.isIPv4)
        #expect(IPAddress(mapped: mappedText.mapped) == IPAddress("1.2.3.4"))
    }

    @Test func ordering() {
        let sorted = ["fd00::1", "10.0.0.2", "::", "10.0.0.1"].compactMap { IPAddress($0) }.sorted()
        #expect(sorted.map(\.description) == ["10.0.0.1", "10.0.0.2", "::", "fd00::1"])
    }

    @Test(arguments: [
        ("10.8.0.1/24", "10.8.0.1/24", "10.8.0.0/24"),
        ("10.8.0.0/24", "10.8.0.0/24", "10.8.0.0/24"),
        ("0.0.0.0/0", "0.0.0.0/0", "0.0.0.0/0"),
        ("1.2.3.4/0", "1.2.3.4/0", "0.0.0.0/0"),
        ("10.1.2.3", "10.1.2.3/32", "10.1.2.3/32"),
        ("fd00::1", "fd00::1/128", "fd00::1/128"),
        ("fd00::1/64", "fd00::1/64", "fd00::/64"),
        ("::/0", "::/0", "::/0"),
        ("2001:db8:ffff:ffff::/33", "2001:db8:ffff:ffff::/33", "2001:db8:8000::/33"),
        ("fd00::ffff:ffff:ffff:ffff/65", "fd00::ffff:ffff:ffff:ffff/65", "fd00::8000:0:0:0/65"),
        ("fd00::7fff:ffff:ffff:ffff/65", "fd00::7fff:ffff:ffff:ffff/65", "fd00::/65"),
        ("fd00::ffff:ffff:ffff:ffff/96", "fd00::ffff:ffff:ffff:ffff/96", "fd00::ffff:ffff:0:0/96"),
    ])
    func prefixes(text: String, written: String, masked: String) throws {
        let prefix = try #require(IPPrefix(text))
        #expect(prefix.description == written)
        #expect(prefix.masked.description == masked)
        #expect(prefix.hasHostBits == (written != masked))
    }

    @Test(arguments: [
        "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8/8",
        "/8", "::/129", "::/1280", "10.0.0/8", "fd00::/6 4", "10.0.0.0/ 8", "fe80::1%eth0/64",
    ])
    func rejectsPrefix(text: String) {
        #expect(IPPrefix(text) == nil)
    }

    @Test func contains() throws {
        let net = try #require(IPPrefix("10.8.0.77/24"))
        #expect(net.contains(IPAddress("10.8.0.1")!))
        #expect(net.contains(IPAddress("10.8.0.255")!))
        #expect(!net.contains(IPAddress("10.8.1.0")!))
        #expect(!net.contains(IPAddress("::ffff:10.8.0.1")!))
        let all4 = try #require(IPPrefix("0.0.0.0/0"))
        let all6 = try #require(IPPrefix("::/0"))
        #expect(all4.contains(IPAddress("203.0.113.9")!))
        #expect(!all4.contains(IPAddress("::1")!))
        #expect(all6.contains(IPAddress("::1")!))
        #expect(!all6.contains(IPAddress("1.2.3.4")!))
        let v6 = try #require(IPPrefix("2001:db8::/32"))
        #expect(v6.contains(IPAddress("2001:db8:ffff::1")!))
        #expect(!v6.contains(IPAddress("2001:db9::")!))
        let host = try #require(IPPrefix("fd00::1"))
        #expect(host.contains(IPAddress("fd00::1")!))
        #expect(!host.contains(IPAddress("fd00::2")!))
    }

    @Test(arguments: [
        ("1.2.3.4:51820", "1.2.3.4:51820"),
        ("[fd00::1]:51820", "[fd00::1]:51820"),
        ("[::ffff:1.2.3.4]:1", "1.2.3.4:1"),
        ("[2001:DB8::1]:65535", "[2001:db8::1]:65535"),
    ])
    func literalEndpoints(text: String, expected: String) throws {
        let endpoint = try #require(Endpoint(text))
        #expect(endpoint.description == expected)
    }

    @Test(arguments: [
        "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:051820", "fd00::1:51820",
        "[fd00::1]", "[fd00::1]:", "[]:1", "[1.2.3.4]:1", "example.com:1", "1.2.3.4:+1", "[fe80::1%eth0]:1",
    ])
    func rejectsEndpoint(text: String) {
        #expect(Endpoint(text) == nil)
    }
}
