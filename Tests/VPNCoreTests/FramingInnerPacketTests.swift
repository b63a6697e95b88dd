// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore

@Suite("Inner packet header")
struct FramingInnerPacketTests {
    private func length(_ bytes: [UInt8]) -> Int? { bytes.withUnsafeBytes { InnerPacket.length(of: $0) } }

    @Test("IPv4 and IPv6 lengths, with padding behind")
    func lengths() {
        #expect(length(ipv4Packet(totalLength: 20)) == 20)
        #expect(length(ipv4Packet(totalLength: 28) + [0, 0, 0, 0]) == 28)
        #expect(length(ipv6Packet(payloadLength: 0)) == 40)
        #expect(length(ipv6Packet(payloadLength: 9) + [UInt8](repeating: 0, count: 15)) == 49)
    }

    @Test("malformed inner packets give nil")
    func malformed() {
        #expect(length([]) == nil)
        #expect(length([0x45]) == nil)
        #expect(length(Array(ipv4Packet(totalLength: 20)[0..<19])) == nil, "shorter than the header")
        var v4 = ipv4Packet(totalLength: 40)
        v4[3] = 41
        #expect(length(v4) == nil, "total length past the buffer")
        v4[3] = 19
        #expect(length(v4) == nil, "total length shorter than the header")
        v4[3] = 40
        v4[0] = 0x44
        #expect(length(v4) == nil, "IHL below 5")
        v4[0] = 0x4F
        #expect(length(v4) == nil, "IHL of 60 bytes past the total length")
        v4[0] = 0x46
        #expect(length(v4) == 40, "options fit")
        var v6 = ipv6Packet(payloadLength: 10)
        v6[5] = 11
        #expect(length(v6) == nil, "payload past the buffer")
        #expect(length(Array(ipv6Packet(payloadLength: 0)[0..<39])) == nil)
        for version: UInt8 in [0, 1, 5, 7, 0xF] {
            var other = ipv4Packet(totalLength: 60)
            other[0] = version << 4 | 5
            #expect(length(other) == nil, "version \(version)")
        }
    }

    @Test("addresses in Endpoint's 16-byte form")
    func addresses() throws {
        let v4 = ipv4Packet(totalLength: 20)
        let source = try #require(v4.withUnsafeBytes { InnerPacket.sourceAddress(of: $0) })
        let destination = try #require(v4.withUnsafeBytes { InnerPacket.destinationAddress(of: $0) })
        #expect(source == Endpoint(ipv4: 10, 8, 0, 1, port: 0).address)
        #expect(destination == Endpoint(ipv4: 10, 8, 0, 2, port: 0).address)

        let v6 = ipv6Packet(payloadLength: 0)
        let source6 = try #require(v6.withUnsafeBytes { InnerPacket.sourceAddress(of: $0) })
        #expect(withUnsafeBytes(of: source6) { Array($0) } == [0xFD] + [UInt8](repeating: 0, count: 14) + [1])
        let destination6 = try #require(v6.withUnsafeBytes { InnerPacket.destinationAddress(of: $0) })
        #expect(withUnsafeBytes(of: destination6) { Array($0) } == [0xFD] + [UInt8](repeating: 0, count: 14) + [2])

        #expect(v4.withUnsafeBytes { InnerPacket.source(of: $0) } == IPAddress(ipv4: 10, 8, 0, 1))
        #expect(v4.withUnsafeBytes { InnerPacket.destination(of: $0) } == IPAddress(ipv4: 10, 8, 0, 2))
        #expect(v6.withUnsafeBytes { InnerPacket.source(of: $0) } == .v6(0xFD00 << 48, 1))
        #expect(v6.withUnsafeBytes { InnerPacket.destination(of: $0) } == .v6(0xFD00 << 48, 2))
        var mapped = v6
        mapped[8..<24] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 8, 0, 1][...]
        #expect(mapped.withUnsafeBytes { InnerPacket.source(of: $0) } == .v6(0, 0xFFFF_0A08_0001), "family kept")
        #expect([UInt8](repeating: 0x45, count: 19).withUnsafeBytes { InnerPacket.source(of: $0) } == nil)
        #expect([UInt8](repeating: 0x60, count: 39).withUnsafeBytes { InnerPacket.destination(of: $0) } == nil)
        #expect([UInt8](repeating: 0x45, count: 19).withUnsafeBytes { InnerPacket.sourceAddress(of: $0) } == nil)
        #expect([UInt8](repeating: 0x60, count: 39).withUnsafeBytes { InnerPacket.destinationAddress(of: $0) } == nil)
        #expect([UInt8](repeating: 0x50, count: 60).withUnsafeBytes { InnerPacket.sourceAddress(of: $0) } == nil)
    }
}
