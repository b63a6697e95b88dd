// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

/// RFC 1071 by the book: 16-bit big-endian words, an odd byte padded with zero, carries folded.
func offloadReferenceSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var index = 0
    while index + 1 < bytes.count {
        sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
        index += 2
    }
    if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

/// The reference checksum (complemented sum).
func offloadReferenceChecksum(_ bytes: [UInt8]) -> UInt16 { ~offloadReferenceSum(bytes) }

@Suite("Offload: Internet checksum")
struct OffloadChecksumTests {
    @Test("RFC 1071 §3 example: sum 0xddf2, checksum 0x220d")
    func rfcExample() {
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        bytes.withUnsafeBytes { raw in
            #expect(InternetChecksum.fold(InternetChecksum.sum(raw)) == 0xDDF2)
            #expect(InternetChecksum.checksum(raw) == 0x220D)
        }
    }

    @Test("matches the reference for every length 0..<300 and random lengths up to 64 KiB, at odd addresses")
    func matchesReference() {
        var entropy = SeededEntropy(seed: 0xC5C5)
        var lengths = Array(0..<300)
        for _ in 0..<200 { lengths.append(Int(entropy.nextUInt64() % 65_536)) }
        lengths.append(65_535)
        // All-0xFF data maximises carries.
        let ones = [UInt8](repeating: 0xFF, count: 65_537)
        for length in lengths {
            var data = [UInt8](repeating: 0, count: length + 1)
            data.withUnsafeMutableBytes { entropy.fill($0) }
            for source in [data, ones] {
                let slice = Array(source[1..<(1 + length)])
                source.withUnsafeBytes { raw in
                    // Offset 1: the loads are unaligned.
                    let region = UnsafeRawBufferPointer(rebasing: raw[1..<(1 + length)])
                    #expect(InternetChecksum.checksum(region) == offloadReferenceChecksum(slice), "length \(length)")
                }
            }
        }
    }

    @Test("partial sums of even-length chunks add up to the sum of the whole")
    func partialSumsCombine() {
        var entropy = SeededEntropy(seed: 7)
        var data = [UInt8](repeating: 0, count: 3001)
        data.withUnsafeMutableBytes { entropy.fill($0) }
        data.withUnsafeBytes { raw in
            let whole = InternetChecksum.fold(InternetChecksum.sum(raw))
            for cut in stride(from: 0, through: 3000, by: 2) {
                let first = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: raw[..<cut]))
                let both = InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: raw[cut...]), initial: first)
                #expect(InternetChecksum.fold(both) == whole)
                #expect(InternetChecksum.fold(InternetChecksum.add(first,
                    InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: raw[cut...])))) == whole)
            }
        }
    }

    @Test("python3-computed checksums: IPv4 header, IPv4/TCP, IPv6/UDP with an odd payload")
    func knownAnswers() {
        // Computed with python3's struct module and a by-hand RFC 1071 sum (see the report).
        let tcp = offloadKnownTCPv4()
        tcp.withUnsafeBytes { raw in
            let header = UnsafeRawBufferPointer(rebasing: raw[0..<20])
            #expect(InternetChecksum.checksum(header) == 0x0A6E)
            let pseudo = InternetChecksum.pseudoHeaderSum(
                addresses: raw.baseAddress! + 12, addressSize: 4, protocol: 6, length: raw.count - 20)
            #expect(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[20...]), initial: pseudo) == 0x4265)
        }
        let udp = offloadKnownUDPv6()
        udp.withUnsafeBytes { raw in
            let pseudo = InternetChecksum.pseudoHeaderSum(
                addresses: raw.baseAddress! + 8, addressSize: 16, protocol: 17, length: raw.count - 40)
            #expect(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[40...]), initial: pseudo) == 0x3114)
        }
    }

    @Test("VirtioNetHeader: little-endian layout, round trip, short input rejected")
    func virtioHeader() {
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4 | VirtioNetHeader.gsoECN,
            headerLength: 0x0134, gsoSize: 0x05A8, checksumStart: 20, checksumOffset: 16)
        var bytes = [UInt8](repeating: 0xEE, count: 10)
        bytes.withUnsafeMutableBytes { header.write(into: $0) }
        #expect(bytes == [0x01, 0x81, 0x34, 0x01, 0xA8, 0x05, 20, 0, 16, 0])
        #expect(bytes.withUnsafeBytes { VirtioNetHeader(parsing: $0) } == header)
        #expect(bytes.withUnsafeBytes { VirtioNetHeader(parsing: UnsafeRawBufferPointer(rebasing: $0[..<9])) } == nil)
        #expect(header.gsoKind == VirtioNetHeader.gsoTCPv4)
        #expect(header.needsChecksum)
        #expect(VirtioNetHeader.size == 10)
        #expect([VirtioNetHeader.gsoNone, VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoUDP, VirtioNetHeader.gsoTCPv6,
            VirtioNetHeader.gsoUDPL4, VirtioNetHeader.gsoECN] == [0, 1, 3, 4, 5, 0x80])
        #expect([VirtioNetHeader.flagNeedsChecksum, VirtioNetHeader.flagDataValid] == [1, 2])
    }
}

/// 10.0.0.1:40000 → 10.0.0.2:5201, id 0x1c46, DF, TTL 64, seq 0x01020304, ack 0x0a0b0c0d, PSH|ACK,
/// window 0xffff, payload "a"..."z"; both checksum fields zero.
func offloadKnownTCPv4() -> [UInt8] {
    let payload = Array("abcdefghijklmnopqrstuvwxyz".utf8)
    var p: [UInt8] = [0x45, 0, 0, UInt8(40 + payload.count), 0x1C, 0x46, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
    p += [0x9C, 0x40, 0x14, 0x51, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    return p + payload
}

/// [fd00::1]:1234 → [fd00::2]:5678, UDP, payload "hello, offload!" (15 bytes); checksum field zero.
func offloadKnownUDPv6() -> [UInt8] {
    let payload = Array("hello, offload!".utf8)
    var p: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(8 + payload.count), 17, 64]
    p += [0xFD] + [UInt8](repeating: 0, count: 14) + [1]
    p += [0xFD] + [UInt8](repeating: 0, count: 14) + [2]
    p += [0x04, 0xD2, 0x16, 0x2E, 0, UInt8(8 + payload.count), 0, 0]
    return p + payload
}
