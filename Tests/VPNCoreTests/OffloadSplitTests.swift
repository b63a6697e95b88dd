// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

// MARK: - Test support (shared by the Offload*Tests files)

/// `count` packet buffers of `slotSize` bytes with `headroom` reserved, owned by the value.
final class OffloadBatch {
    let slab: PacketSlab
    let buffers: UnsafeMutableBufferPointer<PacketBuffer>
    let headroom: Int

    init(count: Int, slotSize: Int = 2048, headroom: Int = 16) {
        slab = PacketSlab(slotSize: slotSize, slotCount: count)
        buffers = .allocate(capacity: count)
        self.headroom = headroom
        for index in 0..<count { (buffers.baseAddress! + index).initialize(to: slab.buffer(index, headroom: headroom)) }
    }

    deinit { buffers.deallocate() }

    func reset() { for index in 0..<buffers.count { buffers[index].reset(headroom: headroom) } }

    /// Buffer `index`'s bytes.
    subscript(index: Int) -> [UInt8] { Array(UnsafeRawBufferPointer(buffers[index].bytes)) }

    /// Empties the batch and loads `packets` into the first buffers.
    func load(_ packets: [[UInt8]]) {
        reset()
        for (index, packet) in packets.enumerated() { packet.withUnsafeBytes { buffers[index].append(contentsOf: $0) } }
    }
}

func offloadBE16(_ p: [UInt8], _ at: Int) -> Int { Int(p[at]) << 8 | Int(p[at + 1]) }
func offloadBE32(_ p: [UInt8], _ at: Int) -> UInt32 {
    UInt32(p[at]) << 24 | UInt32(p[at + 1]) << 16 | UInt32(p[at + 2]) << 8 | UInt32(p[at + 3])
}
func offloadPutBE16(_ p: inout [UInt8], _ at: Int, _ v: Int) {
    p[at] = UInt8((v >> 8) & 0xFF)
    p[at + 1] = UInt8(v & 0xFF)
}
func offloadPutBE32(_ p: inout [UInt8], _ at: Int, _ v: UInt32) {
    for k in 0..<4 { p[at + k] = UInt8((v >> (24 - 8 * UInt32(k))) & 0xFF) }
}

/// Reference pseudo-header bytes (RFC 793 / RFC 8200 §8.1) for the packet `p`.
func offloadPseudoHeader(_ p: [UInt8]) -> [UInt8] {
    let v6 = p[0] >> 4 == 6
    let ipLength = v6 ? 40 : Int(p[0] & 0x0F) * 4
    let l4Length = p.count - ipLength
    let proto = v6 ? p[6] : p[9]
    if v6 {
        return Array(p[8..<40]) + [0, 0, UInt8(l4Length >> 8), UInt8(l4Length & 0xFF), 0, 0, 0, proto]
    }
    return Array(p[12..<20]) + [0, proto, UInt8(l4Length >> 8), UInt8(l4Length & 0xFF)]
}

/// Whether the TCP/UDP checksum of `p` verifies (reference arithmetic).
func offloadL4ChecksumValid(_ p: [UInt8]) -> Bool {
    let ipLength = p[0] >> 4 == 6 ? 40 : Int(p[0] & 0x0F) * 4
    return offloadReferenceSum(offloadPseudoHeader(p) + Array(p[ipLength...])) == 0xFFFF
}

/// A super-packet as the tun hands it over: headers, `payload`, the IPv4 header checksum done and
/// the L4 checksum field holding only the pseudo-header sum (NEEDS_CSUM); plus its header.
struct OffloadSuperPacket {
    var bytes: [UInt8]
    var header: VirtioNetHeader
    var ipHeaderLength: Int
    var l4HeaderLength: Int
    var headersLength: Int { ipHeaderLength + l4HeaderLength }

    init(
        v6: Bool, tcp: Bool, payload: [UInt8], gsoSize: Int, tcpOptions: Int = 0, flags: UInt8 = 0x10,
        id: UInt16 = 0x1234, seq: UInt32 = 0xFFFF_F000, ack: UInt32 = 0x0102_0304, srcPort: UInt16 = 40000,
        ttl: UInt8 = 64
    ) {
        ipHeaderLength = v6 ? 40 : 20
        l4HeaderLength = tcp ? 20 + tcpOptions : 8
        let total = ipHeaderLength + l4HeaderLength + payload.count
        var p = [UInt8](repeating: 0, count: ipHeaderLength + l4HeaderLength)
        if v6 {
            p[0] = 0x60; p[1] = 0x0A; p[2] = 0xBC; p[3] = 0xDE  // traffic class 0, flow label 0xabcde
            offloadPutBE16(&p, 4, total - 40)
            p[6] = tcp ? 6 : 17
            p[7] = ttl
            p[8] = 0xFD; p[23] = 1
            p[24] = 0xFD; p[39] = 2
        } else {
            p[0] = 0x45; p[1] = 0x00
            offloadPutBE16(&p, 2, total)
            offloadPutBE16(&p, 4, Int(id))
            p[6] = 0x40  // DF
            p[8] = ttl
            p[9] = tcp ? 6 : 17
            p[12] = 10; p[13] = 8; p[15] = 1
            p[16] = 10; p[17] = 8; p[19] = 2
            offloadPutBE16(&p, 10, Int(offloadReferenceChecksum(Array(p[0..<20]))))
        }
        let l4 = ipHeaderLength
        offloadPutBE16(&p, l4, Int(srcPort))
        offloadPutBE16(&p, l4 + 2, 5201)
        if tcp {
            offloadPutBE32(&p, l4 + 4, seq)
            offloadPutBE32(&p, l4 + 8, ack)
            p[l4 + 12] = UInt8(l4HeaderLength / 4) << 4
            p[l4 + 13] = flags
            offloadPutBE16(&p, l4 + 14, 0xFFF0)
            for k in 0..<tcpOptions { p[l4 + 20 + k] = k < 2 ? 1 : UInt8(truncatingIfNeeded: 8 + k) }
        } else {
            offloadPutBE16(&p, l4 + 4, min(0xFFFF, total - l4))
        }
        p += payload
        let field = l4 + (tcp ? 16 : 6)
        offloadPutBE16(&p, field, Int(offloadReferenceSum(offloadPseudoHeader(p))))
        bytes = p
        header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum,
            gsoType: tcp ? (v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4) : VirtioNetHeader.gsoUDPL4,
            headerLength: UInt16(ipHeaderLength + l4HeaderLength), gsoSize: UInt16(gsoSize),
            checksumStart: UInt16(ipHeaderLength), checksumOffset: tcp ? 16 : 6)
    }

    /// The tun read: header then packet.
    var read: [UInt8] {
        var raw = [UInt8](repeating: 0, count: 10)
        raw.withUnsafeMutableBytes { header.write(into: $0) }
        return raw + bytes
    }
}

func offloadRandomBytes(_ entropy: inout SeededEntropy, _ count: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { entropy.fill($0) }
    return out
}

/// Splits `packet` into `batch` and checks every segment against the rules with reference code.
/// Returns the segments.
@discardableResult
func offloadSplitAndVerify(
    _ packet: OffloadSuperPacket, batch: OffloadBatch, sourceLocation: SourceLocation = #_sourceLocation
) -> [[UInt8]] {
    batch.reset()
    let result = packet.read.withUnsafeBytes { GSOSplitter.split(virtioPacket: $0, into: batch.buffers) }
    let original = packet.bytes
    let payload = Array(original[packet.headersLength...])
    let gso = Int(packet.header.gsoSize)
    let expectedCount = max(1, (payload.count + gso - 1) / gso)
    guard case .segments(let count) = result else {
        Issue.record("split dropped: \(result)", sourceLocation: sourceLocation)
        return []
    }
    #expect(count == expectedCount, sourceLocation: sourceLocation)
    let v6 = original[0] >> 4 == 6
    let tcp = packet.l4HeaderLength != 8 || packet.header.gsoKind != VirtioNetHeader.gsoUDPL4
    let l4 = packet.ipHeaderLength
    var segments: [[UInt8]] = []
    var joined: [UInt8] = []
    for index in 0..<count {
        let s = batch[index]
        segments.append(s)
        let slice = min(gso, payload.count - index * gso)
        #expect(s.count == packet.headersLength + slice, sourceLocation: sourceLocation)
        guard s.count == packet.headersLength + slice else { continue }
        joined += s[packet.headersLength...]
        if v6 {
            #expect(offloadBE16(s, 4) == s.count - 40, sourceLocation: sourceLocation)
            #expect(s[0..<4] == original[0..<4] && s[6..<40] == original[6..<40], sourceLocation: sourceLocation)
        } else {
            #expect(offloadBE16(s, 2) == s.count, sourceLocation: sourceLocation)
            #expect(offloadBE16(s, 4) == (offloadBE16(original, 4) + index) & 0xFFFF, sourceLocation: sourceLocation)
            #expect(offloadReferenceSum(Array(s[0..<20])) == 0xFFFF, "IPv4 header checksum", sourceLocation: sourceLocation)
            #expect(s[6..<10] == original[6..<10] && s[12..<20] == original[12..<20], sourceLocation: sourceLocation)
        }
        if tcp {
            #expect(offloadBE32(s, l4 + 4) == offloadBE32(original, l4 + 4) &+ UInt32(index * gso),
                sourceLocation: sourceLocation)
            var flags = original[l4 + 13]
            if index != count - 1 { flags &= ~0x09 }
            if index != 0 { flags &= ~0x80 }
            #expect(s[l4 + 13] == flags, "TCP flags of segment \(index)", sourceLocation: sourceLocation)
            #expect(s[(l4 + 8)..<(l4 + 13)] == original[(l4 + 8)..<(l4 + 13)], sourceLocation: sourceLocation)
            #expect(s[(l4 + 18)..<packet.headersLength] == original[(l4 + 18)..<packet.headersLength],
                sourceLocation: sourceLocation)
        } else {
            #expect(offloadBE16(s, l4 + 4) == s.count - l4, sourceLocation: sourceLocation)
            #expect(offloadBE16(s, l4 + 6) != 0, sourceLocation: sourceLocation)
        }
        #expect(offloadL4ChecksumValid(s), "L4 checksum of segment \(index)", sourceLocation: sourceLocation)
    }
    #expect(joined == payload, "payload reassembles", sourceLocation: sourceLocation)
    return segments
}

// MARK: - Tests

@Suite("Offload: GSO splitting")
struct OffloadSplitTests {
    @Test("IPv4/TCP with options: ids, seq (wrapping), FIN/PSH on the last, CWR on the first, checksums")
    func ipv4TCP() {
        var entropy = SeededEntropy(seed: 41)
        let packet = OffloadSuperPacket(
            v6: false, tcp: true, payload: offloadRandomBytes(&entropy, 5000), gsoSize: 1388, tcpOptions: 12,
            flags: 0x80 | 0x10 | 0x08 | 0x01, id: 0xFFFE)
        let segments = offloadSplitAndVerify(packet, batch: OffloadBatch(count: 8))
        #expect(segments.count == 4)
        #expect(segments.map(\.count) == [1440, 1440, 1440, 5000 - 3 * 1388 + 52])
        #expect(segments.map { $0[33] } == [0x90, 0x10, 0x10, 0x19])
        #expect(segments.map { offloadBE16($0, 4) } == [0xFFFE, 0xFFFF, 0x0000, 0x0001])
    }

    @Test("IPv6/TCP")
    func ipv6TCP() {
        var entropy = SeededEntropy(seed: 42)
        let packet = OffloadSuperPacket(
            v6: true, tcp: true, payload: offloadRandomBytes(&entropy, 64_000), gsoSize: 1348, flags: 0x18)
        let segments = offloadSplitAndVerify(packet, batch: OffloadBatch(count: 64))
        #expect(segments.count == 48)
    }

    @Test("IPv4/UDP (USO): UDP length and checksum per datagram")
    func ipv4UDP() {
        var entropy = SeededEntropy(seed: 43)
        let packet = OffloadSuperPacket(v6: false, tcp: false, payload: offloadRandomBytes(&entropy, 4001), gsoSize: 1000)
        let segments = offloadSplitAndVerify(packet, batch: OffloadBatch(count: 8))
        #expect(segments.map(\.count) == [1028, 1028, 1028, 1028, 29])
    }

    @Test("IPv6/UDP (USO)")
    func ipv6UDP() {
        var entropy = SeededEntropy(seed: 44)
        let packet = OffloadSuperPacket(v6: true, tcp: false, payload: offloadRandomBytes(&entropy, 10_000), gsoSize: 1232)
        #expect(offloadSplitAndVerify(packet, batch: OffloadBatch(count: 16)).count == 9)
    }

    @Test("GSO_NONE with NEEDS_CSUM: the partial checksum is completed; without it, bytes are copied as they are")
    func gsoNone() {
        // The python3-checked IPv4/TCP packet: partial = pseudo-header sum, expected 0x4265.
        var packet = offloadKnownTCPv4()
        offloadPutBE16(&packet, 10, 0x0A6E)
        offloadPutBE16(&packet, 36, Int(offloadReferenceSum(offloadPseudoHeader(packet))))
        let batch = OffloadBatch(count: 2)
        let header = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 20, checksumOffset: 16)
        let result = packet.withUnsafeBytes { GSOSplitter.split($0, header: header, into: batch.buffers) }
        #expect(result == .segments(1))
        var expected = packet
        offloadPutBE16(&expected, 36, 0x4265)
        #expect(batch[0] == expected)

        // The IPv6/UDP one, expected 0x3114.
        var udp = offloadKnownUDPv6()
        offloadPutBE16(&udp, 46, Int(offloadReferenceSum(offloadPseudoHeader(udp))))
        batch.reset()
        let udpHeader = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 40, checksumOffset: 6)
        #expect(udp.withUnsafeBytes { GSOSplitter.split($0, header: udpHeader, into: batch.buffers) } == .segments(1))
        #expect(offloadBE16(batch[0], 46) == 0x3114)

        batch.reset()
        #expect(udp.withUnsafeBytes { GSOSplitter.split($0, header: VirtioNetHeader(), into: batch.buffers) } == .segments(1))
        #expect(batch[0] == udp)
    }

    @Test("drops: batch too small, segment over the tailroom, bad GSO type, mismatched version, zero gso_size")
    func drops() {
        var entropy = SeededEntropy(seed: 45)
        let packet = OffloadSuperPacket(v6: false, tcp: true, payload: offloadRandomBytes(&entropy, 3000), gsoSize: 1000)
        func split(_ p: [UInt8], _ h: VirtioNetHeader, _ batch: OffloadBatch) -> SegmentResult {
            p.withUnsafeBytes { GSOSplitter.split($0, header: h, into: batch.buffers) }
        }
        let small = OffloadBatch(count: 2)
        #expect(split(packet.bytes, packet.header, small) == .drop(.offloadBatchTooSmall))
        #expect(small.buffers.allSatisfy { $0.count == 0 })
        #expect(split(packet.bytes, packet.header, OffloadBatch(count: 4, slotSize: 1024)) == .drop(.packetTooBig))
        var header = packet.header
        header.gsoType = VirtioNetHeader.gsoUDP
        #expect(split(packet.bytes, header, OffloadBatch(count: 4)) == .drop(.malformedOffload))
        header.gsoType = VirtioNetHeader.gsoTCPv6
        #expect(split(packet.bytes, header, OffloadBatch(count: 4)) == .drop(.malformedOffload))
        header = packet.header
        header.gsoSize = 0
        #expect(split(packet.bytes, header, OffloadBatch(count: 4)) == .drop(.malformedOffload))
        #expect(split([], packet.header, OffloadBatch(count: 4)) == .drop(.malformedOffload))
        #expect([UInt8](repeating: 0, count: 9).withUnsafeBytes {
            GSOSplitter.split(virtioPacket: $0, into: OffloadBatch(count: 1).buffers)
        } == .drop(.malformedOffload))
        var noCsum = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 20, checksumOffset: 3019)
        #expect(split(packet.bytes, noCsum, OffloadBatch(count: 1, slotSize: 4096)) == .drop(.malformedOffload))
        noCsum.checksumOffset = 16
        #expect(split(packet.bytes, noCsum, OffloadBatch(count: 1, slotSize: 2048)) == .drop(.packetTooBig))
    }

    @Test("property: 300 seeded super-packets (v4/v6, TCP/UDP, random sizes, options) split correctly")
    func property() {
        var entropy = SeededEntropy(seed: 0x0FF1_0AD)
        let batch = OffloadBatch(count: 128, slotSize: 2048)
        for round in 0..<300 {
            let v6 = entropy.nextUInt64() & 1 == 0
            let tcp = entropy.nextUInt64() & 1 == 0
            let options = tcp ? Int(entropy.nextUInt64() % 11) * 4 : 0
            let headers = (v6 ? 40 : 20) + (tcp ? 20 + options : 8)
            let payloadSize = Int(entropy.nextUInt64() % UInt64(65_535 - headers + 1))
            let minimumGSO = max(1, (payloadSize + 127) / 128)
            let gso = minimumGSO + Int(entropy.nextUInt64() % UInt64(max(1, 1500 - minimumGSO)))
            let flags: UInt8 = UInt8(truncatingIfNeeded: entropy.nextUInt64()) & 0x99 | 0x10
            let packet = OffloadSuperPacket(
                v6: v6, tcp: tcp, payload: offloadRandomBytes(&entropy, payloadSize), gsoSize: min(gso, 1900),
                tcpOptions: options, flags: flags, id: UInt16(truncatingIfNeeded: entropy.nextUInt64()),
                seq: UInt32(truncatingIfNeeded: entropy.nextUInt64()))
            let segments = offloadSplitAndVerify(packet, batch: batch)
            #expect(!segments.isEmpty, "round \(round)")
        }
    }

    @Test("1,000 seeded mutations of reads never crash; what splits fits its buffers")
    func mutations() {
        var entropy = SeededEntropy(seed: 0xBAD0FF)
        let batch = OffloadBatch(count: 64, slotSize: 2048)
        var outcomes = [String: Int]()
        for round in 0..<1000 {
            let v6 = round & 1 == 0
            let tcp = round & 2 == 0
            let payloadSize = Int(entropy.nextUInt64() % 9000)
            var read = OffloadSuperPacket(
                v6: v6, tcp: tcp, payload: offloadRandomBytes(&entropy, payloadSize),
                gsoSize: 200 + Int(entropy.nextUInt64() % 1300)
            ).read
            let mutations = 1 + Int(entropy.nextUInt64() % 4)
            for _ in 0..<mutations {
                switch entropy.nextUInt64() % 4 {
                case 0:  // flip a byte in the headers or the virtio header
                    let at = Int(entropy.nextUInt64() % UInt64(min(read.count, 10 + 80)))
                    read[at] ^= UInt8(truncatingIfNeeded: 1 + entropy.nextUInt64() % 255)
                case 1:  // truncate
                    read.removeLast(Int(entropy.nextUInt64() % UInt64(read.count + 1)))
                case 2:  // random header field values
                    if read.count >= 10 { read.replaceSubrange(0..<10, with: offloadRandomBytes(&entropy, 10)) }
                default:  // a random gso_size
                    if read.count >= 6 {
                        read[4] = UInt8(truncatingIfNeeded: entropy.nextUInt64() % 8)
                        read[5] = UInt8(truncatingIfNeeded: entropy.nextUInt64() % 8)
                    }
                }
            }
            batch.reset()
            let result = read.withUnsafeBytes { GSOSplitter.split(virtioPacket: $0, into: batch.buffers) }
            switch result {
            case .segments(let count):
                outcomes["segments", default: 0] += 1
                #expect(count >= 1 && count <= 64)
                let written = (0..<count).reduce(0) { $0 + batch.buffers[$1].count }
                #expect(written >= max(0, read.count - 10), "round \(round)")
            case .drop(let reason):
                outcomes[reason.description, default: 0] += 1
                #expect(batch.buffers.allSatisfy { $0.count == 0 }, "a drop leaves the buffers untouched")
            }
        }
        // Both outcomes occur, or the mutations prove nothing.
        #expect((outcomes["segments"] ?? 0) > 50)
        #expect((outcomes["malformed-offload"] ?? 0) > 100)
    }
}
