// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

struct AllowedIPsTests {
    static func table(_ routes: [(String, UInt32)]) -> AllowedIPs {
        var table = AllowedIPs()
        for (text, peer) in routes { table.insert(IPPrefix(text)!, peer: peer) }
        return table
    }

    @Test func emptyTableRoutesNothing() {
        let table = AllowedIPs()
        #expect(table.lookup(IPAddress("10.0.0.1")!) == nil)
        #expect(table.lookup(IPAddress("::")!) == nil)
        #expect(table.entries.isEmpty)
    }

    @Test(arguments: [
        ("10.8.0.1", 3), ("10.8.0.2", 2), ("10.8.0.3", 3), ("10.8.1.1", 1), ("10.9.0.0", 0), ("11.0.0.0", 0),
        ("0.0.0.0", 0), ("255.255.255.255", 0), ("10.8.0.128", 4), ("10.8.0.255", 4),
        ("fd00::1", 13), ("fd00::2", 12), ("fd00:0:0:1::", 11), ("fd01::", 10), ("::", 10), ("::ffff:10.8.0.2", 10),
    ] as [(String, UInt32)])
    func overlappingPrefixes(address: String, expected: UInt32) {
        let table = Self.table([
            ("0.0.0.0/0", 0), ("10.8.0.0/16", 1), ("10.8.0.2/32", 2), ("10.8.0.0/24", 3), ("10.8.0.128/25", 4),
            ("::/0", 10), ("fd00::/48", 11), ("fd00::2/128", 12), ("fd00::/64", 13),
        ])
        #expect(table.lookup(IPAddress(address)!) == expected)
    }

    @Test func familiesAreSeparate() {
        let v6Only = Self.table([("::/0", 1)])
        #expect(v6Only.lookup(IPAddress("1.2.3.4")!) == nil)
        #expect(v6Only.lookup(IPAddress("2001:db8::1")!) == 1)
        let v4Only = Self.table([("0.0.0.0/0", 2)])
        #expect(v4Only.lookup(IPAddress("::")!) == nil)
        #expect(v4Only.lookup(IPAddress("::ffff:1.2.3.4")!) == nil)
        #expect(v4Only.lookup(IPAddress("1.2.3.4")!) == 2)
    }

    @Test func mappedFormUsesIPv4Table() {
        let table = Self.table([("10.8.0.0/24", 7), ("fd00::/64", 8)])
        #expect(table.lookup(mapped: Endpoint(ipv4: 10, 8, 0, 9, port: 0).address) == 7)
        #expect(table.lookup(mapped: Endpoint(ipv4: 10, 8, 1, 9, port: 0).address) == nil)
        #expect(table.lookup(mapped: IPAddress("fd00::5")!.mapped) == 8)
        #expect(table.lookup(mapped: IPAddress("fd01::5")!.mapped) == nil)
    }

    @Test func innerPacketAddressesRoute() {
        // An IPv4 header from 10.8.0.2 to 192.168.1.1.
        var header = [UInt8](repeating: 0, count: 20)
        header[0] = 0x45
        header[3] = 20
        header.replaceSubrange(12..<16, with: [10, 8, 0, 2])
        header.replaceSubrange(16..<20, with: [192, 168, 1, 1])
        let table = Self.table([("10.8.0.2/32", 1), ("192.168.0.0/16", 2)])
        header.withUnsafeBytes { packet in
            #expect(table.lookup(mapped: InnerPacket.sourceAddress(of: packet)!) == 1)
            #expect(table.lookup(mapped: InnerPacket.destinationAddress(of: packet)!) == 2)
        }
    }

    @Test func laterInsertReplacesAndHostBitsAreIgnored() {
        var table = Self.table([("10.8.0.7/24", 1)])
        #expect(table.lookup(IPAddress("10.8.0.200")!) == 1)
        table.insert(IPPrefix("10.8.0.0/24")!, peer: 2)
        #expect(table.lookup(IPAddress("10.8.0.200")!) == 2)
        #expect(table.entries.count == 1)
    }

    @Test func removeAllForgetsOnePeer() {
        var table = Self.table([("0.0.0.0/0", 1), ("10.0.0.0/8", 2), ("fd00::/8", 2), ("10.1.0.0/16", 3)])
        table.removeAll(peer: 2)
        #expect(table.lookup(IPAddress("10.2.0.0")!) == 1)
        #expect(table.lookup(IPAddress("10.1.0.0")!) == 3)
        #expect(table.lookup(IPAddress("fd00::1")!) == nil)
    }

    @Test func entriesListsMaskedPrefixesInOrder() {
        let table = Self.table([("fd00::1/64", 5), ("10.8.0.9/24", 1), ("0.0.0.0/0", 0), ("10.8.0.2", 2), ("::/0", 4)])
        #expect(table.entries.map { "\($0.prefix) \($0.peer)" } == [
            "0.0.0.0/0 0", "10.8.0.0/24 1", "10.8.0.2/32 2", "::/0 4", "fd00::/64 5",
        ])
    }

    /// Random prefixes clustered in a few networks, compared against a linear scan.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func matchesLinearScan(seed: UInt64) {
        var entropy = SeededEntropy(seed: seed)
        let v4Bases: [UInt32] = [0x0A00_0000, 0xC0A8_0000, 0x0A08_0000]
        let v6Bases: [(UInt64, UInt64)] = [(0xFD00_0000_0000_0000, 0), (0x2001_0DB8_0000_0000, 0)]
        func randomAddress(v4: Bool) -> IPAddress {
            let noise = entropy.nextUInt64()
            if v4 {
                let base = v4Bases[Int(entropy.next(below: UInt64(v4Bases.count)))]
                let bits = Int(entropy.next(below: 33))
                let mask: UInt32 = bits == 0 ? 0 : UInt32.max >> UInt32(32 - bits)
                return .v4(base ^ (UInt32(truncatingIfNeeded: noise) & mask))
            }
            let base = v6Bases[Int(entropy.next(below: UInt64(v6Bases.count)))]
            let bits = Int(entropy.next(below: 129))
            let low = bits == 0 ? 0 : (bits >= 64 ? noise : noise & (UInt64.max >> UInt64(64 - bits)))
            let high = bits <= 64 ? 0 : entropy.nextUInt64() & (UInt64.max >> UInt64(128 - bits))
            return .v6(base.0 ^ high, base.1 ^ low)
        }
        var table = AllowedIPs()
        var routes: [(IPPrefix, UInt32)] = []
        for peer in 0..<300 as Range<UInt32> {
            let v4 = entropy.next(below: 2) == 0
            let address = randomAddress(v4: v4)
            let length = Int(entropy.next(below: UInt64(address.bitWidth + 1)))
            let prefix = IPPrefix(address: address, length: length)!
            table.insert(prefix, peer: peer)
            routes.removeAll { $0.0.masked == prefix.masked }
            routes.append((prefix, peer))
        }
        for _ in 0..<3000 {
            let address = randomAddress(v4: entropy.next(below: 2) == 0)
            var best: (length: Int, peer: UInt32)? = nil
            for (prefix, peer) in routes where prefix.contains(address) {
                if best == nil || Int(prefix.length) > best!.length { best = (Int(prefix.length), peer) }
            }
            #expect(table.lookup(address) == best?.peer, "address \(address)")
        }
        #expect(table.entries.count == routes.count)
    }
}
