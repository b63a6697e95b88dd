// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

/// A coalescer with input, super and result buffers, for tests.
final class OffloadCoalesceRig {
    let coalescer: TCPCoalescer
    let inputs = OffloadBatch(count: 128, slotSize: 2048)
    let supers: OffloadBatch
    let results: UnsafeMutableBufferPointer<PacketBuffer>

    init(superCount: Int = 8, superSlot: Int = 65_536 + 64, linkHeaderLength: Int = 0) {
        coalescer = TCPCoalescer(capacity: 128, linkHeaderLength: linkHeaderLength)
        supers = OffloadBatch(count: superCount, slotSize: superSlot)
        results = .allocate(capacity: 128)
        results.initialize(repeating: inputs.buffers[0])
    }

    deinit { results.deallocate() }

    /// Coalesces `packets`; returns each write as (header, IP packet or frame) and the super buffers used.
    func run(_ packets: [[UInt8]]) -> (writes: [(header: VirtioNetHeader, packet: [UInt8])], superUsed: Int) {
        inputs.load(packets)
        supers.reset()
        let result = coalescer.coalesce(
            UnsafeMutableBufferPointer(rebasing: inputs.buffers[0..<packets.count]), superBuffers: supers.buffers,
            into: results)
        var writes: [(header: VirtioNetHeader, packet: [UInt8])] = []
        for index in 0..<result.writeCount {
            let bytes = Array(UnsafeRawBufferPointer(results[index].bytes))
            let header = bytes.withUnsafeBytes { VirtioNetHeader(parsing: $0) }!
            writes.append((header, Array(bytes[10...])))
        }
        return (writes, result.superBuffersUsed)
    }
}

/// Checks a merged write as the kernel would use it: header fields, IP lengths, IPv4 header
/// checksum, and the L4 checksum once completed over the whole super-packet.
func offloadCheckMerged(
    _ write: (header: VirtioNetHeader, packet: [UInt8]), gsoSize: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    let p = write.packet
    let v6 = p[0] >> 4 == 6
    let l4 = v6 ? 40 : 20
    let tcpLength = Int(p[l4 + 12] >> 4) * 4
    #expect(write.header == VirtioNetHeader(
        flags: VirtioNetHeader.flagNeedsChecksum, gsoType: v6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
        headerLength: UInt16(l4 + tcpLength), gsoSize: UInt16(gsoSize), checksumStart: UInt16(l4), checksumOffset: 16),
        sourceLocation: sourceLocation)
    if v6 {
        #expect(offloadBE16(p, 4) == p.count - 40, sourceLocation: sourceLocation)
    } else {
        #expect(offloadBE16(p, 2) == p.count, sourceLocation: sourceLocation)
        #expect(offloadReferenceSum(Array(p[0..<20])) == 0xFFFF, sourceLocation: sourceLocation)
    }
    // The field holds the pseudo-header sum; completing it as the kernel does must verify.
    #expect(offloadBE16(p, l4 + 16) == Int(offloadReferenceSum(offloadPseudoHeader(p))), sourceLocation: sourceLocation)
    var completed = p
    offloadPutBE16(&completed, l4 + 16, 0)
    offloadPutBE16(&completed, l4 + 16, Int(offloadReferenceChecksum(offloadPseudoHeader(p) + Array(completed[l4...]))))
    #expect(offloadL4ChecksumValid(completed), sourceLocation: sourceLocation)
}

/// Segments of a TCP stream, as full packets with valid checksums (split by the splitter, which
/// the split tests verify independently).
func offloadTCPSegments(
    v6: Bool = false, payload: Int, gsoSize: Int, seed: UInt64 = 1, flags: UInt8 = 0x10, srcPort: UInt16 = 40000,
    seq: UInt32 = 1000, ack: UInt32 = 0x0102_0304, ttl: UInt8 = 64, options: Int = 0
) -> (OffloadSuperPacket, [[UInt8]]) {
    var entropy = SeededEntropy(seed: seed)
    let packet = OffloadSuperPacket(
        v6: v6, tcp: true, payload: offloadRandomBytes(&entropy, payload), gsoSize: gsoSize, tcpOptions: options,
        flags: flags, seq: seq, ack: ack, srcPort: srcPort, ttl: ttl)
    let batch = OffloadBatch(count: 128)
    batch.reset()
    guard case .segments(let count) = packet.read.withUnsafeBytes({ GSOSplitter.split(virtioPacket: $0, into: batch.buffers) })
    else { return (packet, []) }
    return (packet, (0..<count).map { batch[$0] })
}

/// Recomputes the TCP checksum of an IPv4 (no options) or IPv6 packet with reference arithmetic.
func offloadFixTCPChecksum(_ p: inout [UInt8]) {
    let l4 = p[0] >> 4 == 6 ? 40 : 20
    offloadPutBE16(&p, l4 + 16, 0)
    offloadPutBE16(&p, l4 + 16, Int(offloadReferenceChecksum(offloadPseudoHeader(p) + Array(p[l4...]))))
}

@Suite("Offload: TCP coalescing")
struct OffloadCoalesceTests {
    @Test("split then coalesce gives back the original super-packet and header, IPv4 and IPv6", arguments: [false, true])
    func roundTrip(v6: Bool) {
        let (original, segments) = offloadTCPSegments(v6: v6, payload: 20_000, gsoSize: 1380, flags: 0x18, options: 12)
        #expect(segments.count == 15)
        let rig = OffloadCoalesceRig()
        let (writes, used) = rig.run(segments)
        #expect(writes.count == 1)
        #expect(used == 1)
        guard let merged = writes.first else { return }
        #expect(merged.packet == original.bytes)
        #expect(merged.header == original.header)
        offloadCheckMerged(merged, gsoSize: 1380)
        // And the merged write splits again into the same segments.
        let again = OffloadSuperPacket.fromRead(merged.header, merged.packet)
        #expect(offloadSplitAndVerify(again, batch: OffloadBatch(count: 32)) == segments)
    }

    @Test("interleaved flows merge separately and keep the order of their first packets")
    func interleavedFlows() {
        let (_, a) = offloadTCPSegments(payload: 3000, gsoSize: 1000, srcPort: 1111)
        let (_, b) = offloadTCPSegments(v6: true, payload: 2000, gsoSize: 1000, srcPort: 2222)
        let (writes, used) = OffloadCoalesceRig().run([a[0], b[0], a[1], b[1], a[2]])
        #expect(writes.count == 2)
        #expect(used == 2)
        #expect(writes.map { $0.packet.count } == [40 + 3000, 60 + 2000])
        offloadCheckMerged(writes[0], gsoSize: 1000)
        offloadCheckMerged(writes[1], gsoSize: 1000)
    }

    @Test("what does not merge is written alone, unchanged, behind an all-zero header, in order")
    func nonMergeable() {
        let (_, s) = offloadTCPSegments(payload: 5000, gsoSize: 1000)
        let rig = OffloadCoalesceRig()
        func alone(_ packets: [[UInt8]], _ comment: Comment) {
            let (writes, used) = rig.run(packets)
            #expect(used == 0, comment)
            #expect(writes.map(\.packet) == packets, comment)
            #expect(writes.allSatisfy { $0.header == VirtioNetHeader() }, comment)
        }
        alone([s[0], s[2]], "sequence gap")
        alone([s[1], s[0]], "out of order")
        var otherAck = s[1]
        otherAck[31] ^= 1
        offloadFixTCPChecksum(&otherAck)
        alone([s[0], otherAck], "different ack")
        var syn = s[1]
        syn[33] |= 0x02
        alone([s[0], syn], "SYN")
        var badChecksum = s[1]
        badChecksum[100] ^= 0xFF
        alone([s[0], badChecksum], "bad checksum in the second")
        var badFirst = s[0]
        badFirst[100] ^= 0xFF
        alone([badFirst, s[1]], "bad checksum in the first")
        let (_, ttl) = offloadTCPSegments(payload: 5000, gsoSize: 1000, ttl: 9)
        alone([s[0], ttl[1]], "different TTL")
        let (_, short) = offloadTCPSegments(payload: 500, gsoSize: 500, seq: 1000)
        let (_, after) = offloadTCPSegments(payload: 1000, gsoSize: 1000, seq: 1500)
        alone([short[0], after[0]], "larger after smaller")
        let udp = OffloadSuperPacket(v6: false, tcp: false, payload: [1, 2, 3], gsoSize: 3).bytes
        alone([udp, [0x45], [], [0x60, 1, 2]], "not TCP")
    }

    @Test("PSH ends a merge; the flow's next packets start a new one after it")
    func pshEnds() {
        let (_, s) = offloadTCPSegments(payload: 4000, gsoSize: 1000)
        var psh = s[1]
        psh[33] |= 0x08
        offloadFixTCPChecksum(&psh)
        let (writes, _) = OffloadCoalesceRig().run([s[0], psh, s[2], s[3]])
        #expect(writes.count == 2)
        #expect(writes.map { $0.packet.count } == [2040, 2040])
        #expect(writes.map { $0.packet[33] } == [0x18, 0x10])
        #expect(offloadBE32(writes[1].packet, 24) == 3000)
    }

    @Test("a non-mergeable packet of a flow stops later packets merging into earlier ones (no reordering)")
    func orderWithinFlow() {
        let (_, s) = offloadTCPSegments(payload: 3000, gsoSize: 1000)
        var fin = s[0]
        fin[33] = 0x11  // FIN|ACK, no valid checksum needed: it is never merged
        let (writes, _) = OffloadCoalesceRig().run([s[0], fin, s[1], s[2]])
        #expect(writes.map { $0.packet.count } == [1040, 1040, 2040])
    }

    @Test("limits: super buffers run out, 64 KiB cap, small super buffers")
    func limits() {
        let (_, a) = offloadTCPSegments(payload: 2000, gsoSize: 1000, srcPort: 1)
        let (_, b) = offloadTCPSegments(payload: 2000, gsoSize: 1000, srcPort: 2)
        let (writes, used) = OffloadCoalesceRig(superCount: 1).run(a + b)
        #expect(used == 1)
        #expect(writes.map { $0.packet.count } == [2040, 1040, 1040])

        let (_, first) = offloadTCPSegments(payload: 50_000, gsoSize: 1000, seq: 1000)
        let (_, second) = offloadTCPSegments(payload: 50_000, gsoSize: 1000, seed: 2, seq: 51_000)
        let big = first + second
        let (bigWrites, _) = OffloadCoalesceRig().run(Array(big[0..<100]))
        #expect(bigWrites.map { $0.packet.count } == [40 + 65 * 1000, 40 + 35 * 1000])
        for write in bigWrites { offloadCheckMerged(write, gsoSize: 1000) }

        let (smallWrites, _) = OffloadCoalesceRig(superSlot: 3000).run(Array(big[0..<4]))
        #expect(smallWrites.map { $0.packet.count } == [2040, 2040])
    }

    @Test("property: 100 seeded streams split and re-coalesced give back their super-packet")
    func property() {
        var entropy = SeededEntropy(seed: 0xC0A1)
        let rig = OffloadCoalesceRig()
        for round in 0..<100 {
            let v6 = entropy.nextUInt64() & 1 == 0
            let options = Int(entropy.nextUInt64() % 11) * 4
            let headers = (v6 ? 40 : 20) + 20 + options
            let payload = 1 + Int(entropy.nextUInt64() % UInt64(65_535 - headers))
            let minimumGSO = max(1, (payload + 127) / 128)
            let gso = max(minimumGSO, 1 + Int(entropy.nextUInt64() % 1900))
            let (original, segments) = offloadTCPSegments(
                v6: v6, payload: payload, gsoSize: gso, seed: entropy.nextUInt64(),
                flags: entropy.nextUInt64() & 1 == 0 ? 0x10 : 0x18,
                seq: UInt32(truncatingIfNeeded: entropy.nextUInt64()), options: options)
            let (writes, _) = rig.run(segments)
            #expect(writes.count == 1, "round \(round)")
            if segments.count == 1 {
                #expect(writes.first?.header == VirtioNetHeader())
                #expect(writes.first?.packet == segments[0])
            } else {
                #expect(writes.first?.packet == original.bytes, "round \(round)")
                if let merged = writes.first { offloadCheckMerged(merged, gsoSize: gso) }
            }
        }
    }

    @Test("1,000 seeded mutations of segment batches never crash; merged writes stay consistent")
    func mutations() {
        var entropy = SeededEntropy(seed: 0xDEC0DE)
        let rig = OffloadCoalesceRig(superCount: 4)
        var merges = 0
        for _ in 0..<1000 {
            let (_, segments) = offloadTCPSegments(
                v6: entropy.nextUInt64() & 1 == 0, payload: 1 + Int(entropy.nextUInt64() % 12_000), gsoSize: 1200,
                seed: entropy.nextUInt64())
            var packets = segments
            for _ in 0..<(1 + Int(entropy.nextUInt64() % 4)) {
                let which = Int(entropy.nextUInt64() % UInt64(packets.count))
                switch entropy.nextUInt64() % 3 {
                case 0:
                    let at = Int(entropy.nextUInt64() % UInt64(min(packets[which].count, 80)))
                    packets[which][at] ^= UInt8(truncatingIfNeeded: 1 + entropy.nextUInt64() % 255)
                case 1:
                    packets[which].removeLast(Int(entropy.nextUInt64() % UInt64(packets[which].count + 1)))
                default:
                    packets.swapAt(which, Int(entropy.nextUInt64() % UInt64(packets.count)))
                }
            }
            let (writes, _) = rig.run(packets)
            #expect(writes.count >= 1 && writes.count <= packets.count)
            for write in writes where write.header != VirtioNetHeader() {
                merges += 1
                offloadCheckMerged(write, gsoSize: Int(write.header.gsoSize))
            }
        }
        #expect(merges > 100)
    }
}

extension OffloadSuperPacket {
    /// A super-packet description of a coalesced write, for splitting it again.
    static func fromRead(_ header: VirtioNetHeader, _ packet: [UInt8]) -> OffloadSuperPacket {
        var value = OffloadSuperPacket(v6: false, tcp: true, payload: [], gsoSize: 1)
        let l4 = packet[0] >> 4 == 6 ? 40 : 20
        value.bytes = packet
        value.header = header
        value.ipHeaderLength = l4
        value.l4HeaderLength = Int(packet[l4 + 12] >> 4) * 4
        return value
    }
}
