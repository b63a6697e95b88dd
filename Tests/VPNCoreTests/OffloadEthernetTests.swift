// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

// MARK: - Test support: tap (Ethernet) frames

/// Destination and source MAC of the test frames.
let offloadMACs: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02]

/// An Ethernet header for an IPv4 or IPv6 payload, with `tags` as VLAN IDs (one: 802.1Q; two:
/// 802.1ad outer, 802.1Q inner).
func offloadEthernetHeader(v6: Bool, tags: [UInt16] = [], macs: [UInt8] = offloadMACs) -> [UInt8] {
    var header = macs
    for (index, tag) in tags.enumerated() {
        let outer = index == 0 && tags.count > 1
        header += [outer ? 0x88 : 0x81, outer ? 0xA8 : 0x00, UInt8(tag >> 8), UInt8(tag & 0xFF)]
    }
    return header + (v6 ? [0x86, 0xDD] : [0x08, 0x00])
}

/// A tap read of `packet` behind `link`: hdr_len and csum_start count from the start of the frame.
func offloadTapRead(_ packet: OffloadSuperPacket, link: [UInt8]) -> (header: VirtioNetHeader, frame: [UInt8], read: [UInt8]) {
    var header = packet.header
    header.checksumStart += UInt16(link.count)
    header.headerLength += UInt16(link.count)
    var raw = [UInt8](repeating: 0, count: 10)
    raw.withUnsafeMutableBytes { header.write(into: $0) }
    return (header, link + packet.bytes, raw + link + packet.bytes)
}

/// Splits a tap read into `batch`; the frames, or nil on a drop.
func offloadTapSplit(_ read: [UInt8], batch: OffloadBatch) -> [[UInt8]]? {
    batch.reset()
    let result = read.withUnsafeBytes {
        GSOSplitter.split(virtioPacket: $0, linkHeaderLength: EthernetHeader.size, into: batch.buffers)
    }
    guard case .segments(let count) = result else { return nil }
    return (0..<count).map { batch[$0] }
}

/// Checks a merged tap write: an untagged IP ethertype matching the packet, and the IP packet
/// behind it as ``offloadCheckMerged`` checks a tun write, with offsets counted from the frame.
func offloadCheckMergedFrame(
    _ write: (header: VirtioNetHeader, packet: [UInt8]), sourceLocation: SourceLocation = #_sourceLocation
) {
    let frame = write.packet
    guard frame.count > 14 else {
        Issue.record("merged frame too short", sourceLocation: sourceLocation)
        return
    }
    let ip = Array(frame[14...])
    #expect(offloadBE16(frame, 12) == (ip[0] >> 4 == 6 ? 0x86DD : 0x0800), sourceLocation: sourceLocation)
    var header = write.header
    #expect(header.checksumStart >= 14 && header.headerLength >= 14, sourceLocation: sourceLocation)
    header.checksumStart &-= 14
    header.headerLength &-= 14
    offloadCheckMerged((header, ip), gsoSize: Int(write.header.gsoSize), sourceLocation: sourceLocation)
}

// MARK: - Tests

@Suite("Offload: Ethernet frames (tap)")
struct OffloadEthernetTests {
    @Test(
        "split: each frame is the Ethernet header (tags kept) plus the segment a tun split makes",
        arguments: [[], [42], [100, 7]] as [[UInt16]])
    func split(tags: [UInt16]) {
        var entropy = SeededEntropy(seed: 0xE7)
        for (v6, tcp) in [(false, true), (true, true), (false, false), (true, false)] {
            let packet = OffloadSuperPacket(
                v6: v6, tcp: tcp, payload: offloadRandomBytes(&entropy, 9000), gsoSize: 1400, tcpOptions: tcp ? 12 : 0,
                flags: 0x19)
            let segments = offloadSplitAndVerify(packet, batch: OffloadBatch(count: 16))
            let link = offloadEthernetHeader(v6: v6, tags: tags)
            let frames = offloadTapSplit(offloadTapRead(packet, link: link).read, batch: OffloadBatch(count: 16))
            #expect(frames == segments.map { link + $0 }, "v6 \(v6) tcp \(tcp) tags \(tags)")
        }
    }

    @Test("GSO_NONE: a non-IP frame passes unchanged; an IP frame's partial checksum is completed from csum_start")
    func gsoNone() {
        let batch = OffloadBatch(count: 2)
        let arp: [UInt8] = offloadMACs + [0x08, 0x06] + [0, 1, 8, 0, 6, 4, 0, 1] + [UInt8](repeating: 0xA5, count: 20)
        let plain = arp.withUnsafeBytes {
            GSOSplitter.split($0, header: VirtioNetHeader(), linkHeaderLength: 14, into: batch.buffers)
        }
        #expect(plain == .segments(1))
        #expect(batch[0] == arp)

        // The python3-checked IPv4/TCP packet: partial = pseudo-header sum, expected 0x4265.
        var packet = offloadKnownTCPv4()
        offloadPutBE16(&packet, 10, 0x0A6E)
        offloadPutBE16(&packet, 36, Int(offloadReferenceSum(offloadPseudoHeader(packet))))
        let link = offloadEthernetHeader(v6: false)
        let header = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 34, checksumOffset: 16)
        batch.reset()
        let result = (link + packet).withUnsafeBytes {
            GSOSplitter.split($0, header: header, linkHeaderLength: 14, into: batch.buffers)
        }
        #expect(result == .segments(1))
        var expected = link + packet
        offloadPutBE16(&expected, 14 + 36, 0x4265)
        #expect(batch[0] == expected)
    }

    @Test("drops: non-IP or mismatched ethertype under GSO, three tags, a frame cut in its header, tailroom for the link header")
    func drops() {
        var entropy = SeededEntropy(seed: 0xE8)
        let packet = OffloadSuperPacket(v6: false, tcp: true, payload: offloadRandomBytes(&entropy, 3000), gsoSize: 1000)
        func split(_ link: [UInt8], _ batch: OffloadBatch = OffloadBatch(count: 4)) -> SegmentResult {
            let read = offloadTapRead(packet, link: link)
            return read.frame.withUnsafeBytes {
                GSOSplitter.split($0, header: read.header, linkHeaderLength: 14, into: batch.buffers)
            }
        }
        #expect(split(offloadEthernetHeader(v6: false)) == .segments(3))
        #expect(split(offloadMACs + [0x08, 0x06]) == .drop(.malformedOffload))
        #expect(split(offloadEthernetHeader(v6: true)) == .drop(.malformedOffload))
        #expect(split(offloadEthernetHeader(v6: false, tags: [1, 2])) == .segments(3))
        #expect(split(offloadMACs + [0x81, 0, 0, 1, 0x81, 0, 0, 2, 0x81, 0, 0, 3, 0x08, 0]) == .drop(.malformedOffload))
        #expect(split(Array(offloadMACs[0..<10])) == .drop(.malformedOffload))
        // A segment of 1,040 bytes fits 1,088 - 40 bytes of tailroom; the 1,054-byte frame does not.
        let tight = OffloadBatch(count: 4, slotSize: 1088, headroom: 40)
        #expect(packet.bytes.withUnsafeBytes { GSOSplitter.split($0, header: packet.header, into: tight.buffers) }
            == .segments(3))
        tight.reset()
        #expect(split(offloadEthernetHeader(v6: false), tight) == .drop(.packetTooBig))
        #expect(tight.buffers.allSatisfy { $0.count == 0 })
    }

    @Test("split then coalesce gives back the original frame, with csum_start and hdr_len from the frame start",
        arguments: [false, true])
    func roundTrip(v6: Bool) {
        var entropy = SeededEntropy(seed: v6 ? 0xE9 : 0xEA)
        let packet = OffloadSuperPacket(
            v6: v6, tcp: true, payload: offloadRandomBytes(&entropy, 20_000), gsoSize: 1380, tcpOptions: 12, flags: 0x18)
        let read = offloadTapRead(packet, link: offloadEthernetHeader(v6: v6))
        let frames = offloadTapSplit(read.read, batch: OffloadBatch(count: 32)) ?? []
        #expect(frames.count == 15)
        let (writes, used) = OffloadCoalesceRig(linkHeaderLength: 14).run(frames)
        #expect(writes.count == 1)
        #expect(used == 1)
        guard let merged = writes.first else { return }
        #expect(merged.packet == read.frame)
        #expect(merged.header == read.header)
        #expect(Int(merged.header.checksumStart) == 14 + (v6 ? 40 : 20))
        #expect(Int(merged.header.headerLength) == 14 + (v6 ? 40 : 20) + 32)
        offloadCheckMergedFrame(merged)
        // The merged write splits again into the same frames.
        var again = [UInt8](repeating: 0, count: 10)
        again.withUnsafeMutableBytes { merged.header.write(into: $0) }
        #expect(offloadTapSplit(again + merged.packet, batch: OffloadBatch(count: 32)) == frames)
    }

    @Test("frames of one TCP flow with different MACs, tags, non-IP or mismatched ethertypes are written alone, in order")
    func alone() {
        let (_, s) = offloadTCPSegments(payload: 3000, gsoSize: 1000)
        let link = offloadEthernetHeader(v6: false)
        let rig = OffloadCoalesceRig(linkHeaderLength: 14)
        func alone(_ frames: [[UInt8]], _ comment: Comment) {
            let (writes, used) = rig.run(frames)
            #expect(used == 0, comment)
            #expect(writes.map(\.packet) == frames, comment)
            #expect(writes.allSatisfy { $0.header == VirtioNetHeader() }, comment)
        }
        // The control: these merge.
        #expect(rig.run([link + s[0], link + s[1]]).writes.count == 1)
        var otherMAC = offloadMACs
        otherMAC[5] = 9
        alone([link + s[0], offloadEthernetHeader(v6: false, macs: otherMAC) + s[1]], "different destination MAC")
        let tagged = offloadEthernetHeader(v6: false, tags: [5])
        alone([tagged + s[0], tagged + s[1]], "VLAN-tagged")
        let arp = offloadMACs + [0x08, 0x06]
        alone([arp + s[0], arp + s[1]], "ARP ethertype")
        let v6Type = offloadEthernetHeader(v6: true)
        alone([v6Type + s[0], v6Type + s[1]], "IPv4 behind the IPv6 ethertype")
        alone([[], Array(link[0..<13]), link, link + [0x45]], "short frames")
        alone([s[0], s[1]], "bare IP packets read as frames")
    }

    @Test("property: 60 seeded tap streams split and re-coalesced give back their frame")
    func property() {
        var entropy = SeededEntropy(seed: 0xE7E7)
        let rig = OffloadCoalesceRig(linkHeaderLength: 14)
        let batch = OffloadBatch(count: 128)
        for round in 0..<60 {
            let v6 = entropy.nextUInt64() & 1 == 0
            let options = Int(entropy.nextUInt64() % 11) * 4
            let headers = (v6 ? 40 : 20) + 20 + options
            let payload = 1 + Int(entropy.nextUInt64() % UInt64(65_535 - headers))
            let minimumGSO = max(1, (payload + 127) / 128)
            let gso = max(minimumGSO, 1 + Int(entropy.nextUInt64() % 1900))
            let packet = OffloadSuperPacket(
                v6: v6, tcp: true, payload: offloadRandomBytes(&entropy, payload), gsoSize: gso, tcpOptions: options,
                flags: entropy.nextUInt64() & 1 == 0 ? 0x10 : 0x18, seq: UInt32(truncatingIfNeeded: entropy.nextUInt64()))
            let read = offloadTapRead(packet, link: offloadEthernetHeader(v6: v6))
            guard let frames = offloadTapSplit(read.read, batch: batch) else {
                Issue.record("round \(round): split dropped")
                continue
            }
            let (writes, _) = rig.run(frames)
            #expect(writes.count == 1, "round \(round)")
            if frames.count == 1 {
                #expect(writes.first?.header == VirtioNetHeader())
                #expect(writes.first?.packet == frames[0])
            } else {
                #expect(writes.first?.packet == read.frame, "round \(round)")
                if let merged = writes.first { offloadCheckMergedFrame(merged) }
            }
        }
    }

    @Test("1,000 seeded mutations of tap reads never crash; what splits fits its buffers")
    func splitMutations() {
        var entropy = SeededEntropy(seed: 0x7A9)
        let batch = OffloadBatch(count: 64, slotSize: 2048)
        var outcomes = [String: Int]()
        for round in 0..<1000 {
            let v6 = round & 1 == 0
            let tcp = round & 2 == 0
            let packet = OffloadSuperPacket(
                v6: v6, tcp: tcp, payload: offloadRandomBytes(&entropy, Int(entropy.nextUInt64() % 9000)),
                gsoSize: 200 + Int(entropy.nextUInt64() % 1300))
            let tags: [UInt16] = round & 4 == 0 ? [] : [UInt16(round)]
            var read = offloadTapRead(packet, link: offloadEthernetHeader(v6: v6, tags: tags)).read
            for _ in 0..<(1 + Int(entropy.nextUInt64() % 4)) {
                switch entropy.nextUInt64() % 5 {
                case 0:  // flip a byte in the virtio, Ethernet or IP/L4 headers
                    let at = Int(entropy.nextUInt64() % UInt64(min(read.count, 10 + 18 + 80)))
                    read[at] ^= UInt8(truncatingIfNeeded: 1 + entropy.nextUInt64() % 255)
                case 1:  // truncate
                    read.removeLast(Int(entropy.nextUInt64() % UInt64(read.count + 1)))
                case 2:  // random virtio header
                    if read.count >= 10 { read.replaceSubrange(0..<10, with: offloadRandomBytes(&entropy, 10)) }
                case 3:  // a random ethertype or tag
                    let at = [22, 26, 30][Int(entropy.nextUInt64() % 3)]
                    if read.count >= at + 2 {
                        let types: [UInt16] = [0x0800, 0x86DD, 0x8100, 0x88A8, 0x0806, 0]
                        let value = types[Int(entropy.nextUInt64() % UInt64(types.count))]
                        read[at] = UInt8(value >> 8)
                        read[at + 1] = UInt8(value & 0xFF)
                    }
                default:  // a random gso_size
                    if read.count >= 6 {
                        read[4] = UInt8(truncatingIfNeeded: entropy.nextUInt64() % 8)
                        read[5] = UInt8(truncatingIfNeeded: entropy.nextUInt64() % 8)
                    }
                }
            }
            batch.reset()
            let result = read.withUnsafeBytes {
                GSOSplitter.split(virtioPacket: $0, linkHeaderLength: 14, into: batch.buffers)
            }
            switch result {
            case .segments(let count):
                outcomes["segments", default: 0] += 1
                #expect(count >= 1 && count <= 64)
                let written = (0..<count).reduce(0) { $0 + batch.buffers[$1].count }
                #expect(written >= max(0, read.count - 10), "round \(round)")
                if count > 1 {
                    // Every frame starts with the read's link header.
                    let link = Array(read[10..<24])
                    #expect((0..<count).allSatisfy { Array(batch[$0].prefix(14)) == link }, "round \(round)")
                }
            case .drop(let reason):
                outcomes[reason.description, default: 0] += 1
                #expect(batch.buffers.allSatisfy { $0.count == 0 }, "a drop leaves the buffers untouched")
            }
        }
        #expect((outcomes["segments"] ?? 0) > 50)
        #expect((outcomes["malformed-offload"] ?? 0) > 100)
    }

    @Test("1,000 seeded mutations of tap frame batches never crash; merged writes stay consistent")
    func coalesceMutations() {
        var entropy = SeededEntropy(seed: 0x7AC)
        let rig = OffloadCoalesceRig(superCount: 4, linkHeaderLength: 14)
        var merges = 0
        for _ in 0..<1000 {
            let v6 = entropy.nextUInt64() & 1 == 0
            let (_, segments) = offloadTCPSegments(
                v6: v6, payload: 1 + Int(entropy.nextUInt64() % 12_000), gsoSize: 1200, seed: entropy.nextUInt64())
            let link = offloadEthernetHeader(v6: v6)
            var frames = segments.map { link + $0 }
            for _ in 0..<(1 + Int(entropy.nextUInt64() % 4)) {
                let which = Int(entropy.nextUInt64() % UInt64(frames.count))
                switch entropy.nextUInt64() % 3 {
                case 0:
                    let at = Int(entropy.nextUInt64() % UInt64(min(frames[which].count, 14 + 80)))
                    frames[which][at] ^= UInt8(truncatingIfNeeded: 1 + entropy.nextUInt64() % 255)
                case 1:
                    frames[which].removeLast(Int(entropy.nextUInt64() % UInt64(frames[which].count + 1)))
                default:
                    frames.swapAt(which, Int(entropy.nextUInt64() % UInt64(frames.count)))
                }
            }
            let (writes, _) = rig.run(frames)
            #expect(writes.count >= 1 && writes.count <= frames.count)
            for write in writes where write.header != VirtioNetHeader() {
                merges += 1
                offloadCheckMergedFrame(write)
            }
        }
        #expect(merges > 100)
    }
}
