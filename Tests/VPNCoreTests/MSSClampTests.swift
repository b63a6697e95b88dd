// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
import VPNCore
import VPNTesting

// MARK: - Test support

/// TCP options for the test segments.
enum MSSOption {
    static let nop: [UInt8] = [1]
    static let end: [UInt8] = [0]
    static func mss(_ value: Int) -> [UInt8] { [2, 4, UInt8(value >> 8), UInt8(value & 0xFF)] }
    static let sackPermitted: [UInt8] = [4, 2]
    static let windowScale: [UInt8] = [3, 3, 7]
    static let timestamps: [UInt8] = [8, 10, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 0]
}

/// An IPv4 or IPv6 TCP segment (tun mode) with `options` (padded with end-of-list bytes to a
/// multiple of 4) and a correct TCP checksum computed with reference arithmetic.
func mssSegment(
    v6: Bool, options: [UInt8], flags: UInt8 = 0x02, payload: [UInt8] = [], srcPort: UInt16 = 40000,
    seq: UInt32 = 0x1234_5678, fragment: UInt16 = 0x4000, ipOptions: Int = 0
) -> [UInt8] {
    var options = options
    while options.count % 4 != 0 { options.append(0) }
    let ipLength = v6 ? 40 : 20 + ipOptions
    let tcpLength = 20 + options.count
    let total = ipLength + tcpLength + payload.count
    var p = [UInt8](repeating: 0, count: ipLength)
    if v6 {
        p[0] = 0x60
        offloadPutBE16(&p, 4, total - 40)
        p[6] = 6
        p[7] = 64
        p[8] = 0xFD; p[23] = 1
        p[24] = 0xFD; p[39] = 2
    } else {
        p[0] = 0x40 | UInt8(ipLength / 4)
        offloadPutBE16(&p, 2, total)
        offloadPutBE16(&p, 4, 0x4321)
        offloadPutBE16(&p, 6, Int(fragment))
        p[8] = 64
        p[9] = 6
        p[12] = 10; p[13] = 8; p[15] = 1
        p[16] = 10; p[17] = 8; p[19] = 2
        for k in 0..<ipOptions { p[20 + k] = 1 }  // NOPs
        offloadPutBE16(&p, 10, Int(offloadReferenceChecksum(Array(p[0..<ipLength]))))
    }
    var tcp = [UInt8](repeating: 0, count: 20)
    offloadPutBE16(&tcp, 0, Int(srcPort))
    offloadPutBE16(&tcp, 2, 443)
    offloadPutBE32(&tcp, 4, seq)
    offloadPutBE32(&tcp, 8, flags & 0x10 != 0 ? 0x0BAD_F00D : 0)
    tcp[12] = UInt8(tcpLength / 4) << 4
    tcp[13] = flags
    offloadPutBE16(&tcp, 14, 64240)
    p += tcp + options + payload
    mssFixChecksum(&p)
    return p
}

/// The TCP header offset of a tun-mode packet built by ``mssSegment``.
func mssTCPOffset(_ p: [UInt8]) -> Int { p[0] >> 4 == 6 ? 40 : Int(p[0] & 0x0F) * 4 }

/// The TCP checksum of `p` recomputed from scratch (reference arithmetic, checksum field as 0).
func mssFullChecksum(_ p: [UInt8]) -> UInt16 {
    let tcp = mssTCPOffset(p)
    var q = p
    offloadPutBE16(&q, tcp + 16, 0)
    return offloadReferenceChecksum(offloadPseudoHeader(q) + Array(q[tcp...]))
}

func mssFixChecksum(_ p: inout [UInt8]) { offloadPutBE16(&p, mssTCPOffset(p) + 16, Int(mssFullChecksum(p))) }

/// Runs ``MSSClamp/clamp(_:linkHeaderLength:maximumSegmentSize4:maximumSegmentSize6:)`` on a copy
/// of `packet` followed by 16 guard bytes outside the buffer it is given, checks they are intact
/// and that ``MSSClamp/isTCPSYN(_:linkHeaderLength:)`` agrees, and that a false leaves the packet
/// as it was. Returns the result and the packet afterwards.
func mssClamp(
    _ packet: [UInt8], link: Int = 0, mss4: Int = 1380, mss6: Int = 1360, sourceLocation: SourceLocation = #_sourceLocation
) -> (changed: Bool, packet: [UInt8]) {
    let guardBytes = [UInt8](repeating: 0xA5, count: 16)
    var storage = packet + guardBytes
    var syn = false
    let changed = storage.withUnsafeMutableBytes { raw in
        let region = UnsafeMutableRawBufferPointer(rebasing: raw[0..<packet.count])
        syn = MSSClamp.isTCPSYN(UnsafeRawBufferPointer(region), linkHeaderLength: link)
        return MSSClamp.clamp(region, linkHeaderLength: link, maximumSegmentSize4: mss4, maximumSegmentSize6: mss6)
    }
    #expect(Array(storage[packet.count...]) == guardBytes, "wrote past the buffer", sourceLocation: sourceLocation)
    let after = Array(storage[..<packet.count])
    if changed { #expect(syn, "clamped a packet isTCPSYN rejects", sourceLocation: sourceLocation) }
    if !changed { #expect(after == packet, "false but the packet changed", sourceLocation: sourceLocation) }
    return (changed, after)
}

/// Checks a clamped tun-mode packet: the MSS value at `valueOffset` (from the TCP header) is
/// `expected`, the checksum equals a full recomputation, and nothing else changed.
func mssCheckClamped(
    _ before: [UInt8], _ after: [UInt8], valueOffset: Int, expected: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    let tcp = mssTCPOffset(before)
    #expect(offloadBE16(after, tcp + valueOffset) == expected, sourceLocation: sourceLocation)
    #expect(offloadBE16(after, tcp + 16) == Int(mssFullChecksum(after)), "incremental = full checksum",
        sourceLocation: sourceLocation)
    #expect(offloadL4ChecksumValid(after), sourceLocation: sourceLocation)
    for index in before.indices where index != tcp + 16 && index != tcp + 17
        && index != tcp + valueOffset && index != tcp + valueOffset + 1
    {
        #expect(before[index] == after[index], "byte \(index) changed", sourceLocation: sourceLocation)
    }
}

/// The options of a typical Linux SYN: MSS, SACK permitted, timestamps, NOP, window scale.
let mssLinuxOptions = MSSOption.mss(1460) + MSSOption.sackPermitted + MSSOption.timestamps + MSSOption.nop
    + MSSOption.windowScale

// MARK: - Tests

@Suite("Offload: MSS clamping")
struct MSSClampTests {
    @Test("IPv4 and IPv6 SYN with MSS 1460 clamped to 1380 / 1360, checksum equals a full recomputation",
        arguments: [false, true])
    func clampsSYN(v6: Bool) {
        let syn = mssSegment(v6: v6, options: mssLinuxOptions)
        #expect(offloadL4ChecksumValid(syn))
        let (changed, after) = mssClamp(syn)
        #expect(changed)
        mssCheckClamped(syn, after, valueOffset: 22, expected: v6 ? 1360 : 1380)
    }

    @Test("SYN-ACK too, with an IPv4 header with options and a payload", arguments: [false, true])
    func clampsSYNACK(v6: Bool) {
        let synAck = mssSegment(v6: v6, options: mssLinuxOptions, flags: 0x12, payload: [1, 2, 3], ipOptions: v6 ? 0 : 8)
        let (changed, after) = mssClamp(synAck)
        #expect(changed)
        mssCheckClamped(synAck, after, valueOffset: 22, expected: v6 ? 1360 : 1380)
    }

    @Test("MSS already at or below the maximum, or no MSS option: unchanged, false")
    func unchanged() {
        for v6 in [false, true] {
            let limit = v6 ? 1360 : 1380
            for value in [536, limit - 1, limit] {
                #expect(!mssClamp(mssSegment(v6: v6, options: MSSOption.mss(value) + MSSOption.sackPermitted)).changed)
            }
            #expect(mssClamp(mssSegment(v6: v6, options: MSSOption.mss(limit + 1))).changed)
            #expect(!mssClamp(mssSegment(v6: v6, options: [])).changed)
            #expect(!mssClamp(mssSegment(v6: v6, options: MSSOption.sackPermitted + MSSOption.timestamps)).changed)
            // An MSS option after the end of the list does not count.
            #expect(!mssClamp(mssSegment(v6: v6, options: MSSOption.end + [0, 0, 0] + MSSOption.mss(1460))).changed)
        }
    }

    @Test("odd-aligned MSS values (the value straddles two checksum words)")
    func oddAligned() {
        let layouts: [(options: [UInt8], valueOffset: Int)] = [
            (MSSOption.nop + MSSOption.mss(1460) + MSSOption.nop + MSSOption.nop + MSSOption.nop, 23),
            (MSSOption.nop + MSSOption.nop + MSSOption.nop + MSSOption.mss(1460) + MSSOption.end, 25),
            (MSSOption.windowScale + MSSOption.mss(1460), 25),
            // NOP NOP timestamps, SACK permitted, window scale, MSS last (offset 17 of the options).
            (MSSOption.nop + MSSOption.nop + MSSOption.timestamps + MSSOption.sackPermitted + MSSOption.windowScale
                + MSSOption.mss(1460), 39),
        ]
        for v6 in [false, true] {
            for layout in layouts {
                let syn = mssSegment(v6: v6, options: layout.options)
                #expect(offloadBE16(syn, mssTCPOffset(syn) + layout.valueOffset) == 1460)
                let (changed, after) = mssClamp(syn)
                #expect(changed)
                mssCheckClamped(syn, after, valueOffset: layout.valueOffset, expected: v6 ? 1360 : 1380)
            }
        }
    }

    @Test("incremental checksum equals a full recomputation for 2,000 random SYNs, MSS at every offset")
    func randomSYNs() {
        var entropy = SeededEntropy(seed: 0x55AA)
        for round in 0..<2000 {
            let v6 = round % 2 == 1
            let nops = Int(entropy.nextUInt64() % 30)
            let value = 1381 + Int(entropy.nextUInt64() % 64_154)
            let options = [UInt8](repeating: 1, count: nops) + MSSOption.mss(value)
            let payload = offloadRandomBytes(&entropy, Int(entropy.nextUInt64() % 40))
            let limit = 500 + Int(entropy.nextUInt64() % 880)
            let syn = mssSegment(
                v6: v6, options: options, flags: entropy.nextUInt64() % 2 == 0 ? 0x02 : 0x12, payload: payload,
                srcPort: UInt16(truncatingIfNeeded: entropy.nextUInt64()), seq: UInt32(truncatingIfNeeded: entropy.nextUInt64()))
            let (changed, after) = mssClamp(syn, mss4: limit, mss6: limit)
            #expect(changed)
            mssCheckClamped(syn, after, valueOffset: 20 + nops + 2, expected: limit)
        }
    }

    @Test("several MSS options: each above the maximum is lowered")
    func severalMSS() {
        let syn = mssSegment(v6: false, options: MSSOption.mss(1460) + MSSOption.nop + MSSOption.mss(9000))
        let (changed, after) = mssClamp(syn)
        #expect(changed)
        #expect(offloadBE16(after, 20 + 22) == 1380 && offloadBE16(after, 20 + 27) == 1380)
        #expect(offloadL4ChecksumValid(after))
    }

    @Test("malformed option lists are left untouched")
    func malformedOptions() {
        let lists: [[UInt8]] = [
            MSSOption.mss(1460) + [8, 0, 1, 1],  // length 0
            MSSOption.mss(1460) + [8, 1, 1, 1],  // length 1
            MSSOption.mss(1460) + [8, 10, 1, 1],  // past the header
            [8, 0] + MSSOption.mss(1460) + [1, 1],  // before the MSS
            [8, 9] + MSSOption.mss(1460) + [1, 1],  // past the header from before the MSS
            MSSOption.mss(1460) + [1, 1, 1, 8],  // a kind without its length byte
            [2, 3, 0x05, 0xB4],  // MSS of length 3
            [2, 5, 0x05, 0xB4, 0, 1, 1, 1],  // MSS of length 5
            [2, 2, 1, 1],  // MSS of length 2
        ]
        for v6 in [false, true] {
            for options in lists {
                #expect(!mssClamp(mssSegment(v6: v6, options: options)).changed, "\(options)")
            }
        }
    }

    @Test("not a SYN, an IPv4 fragment, not TCP, an IPv6 extension header: false")
    func notEligible() {
        for v6 in [false, true] {
            for flags: UInt8 in [0x10, 0x18, 0x11, 0x04, 0x00] {
                let segment = mssSegment(v6: v6, options: MSSOption.mss(1460), flags: flags)
                #expect(!mssClamp(segment).changed)
                segment.withUnsafeBytes { #expect(!MSSClamp.isTCPSYN($0, linkHeaderLength: 0)) }
            }
            mssSegment(v6: v6, options: MSSOption.mss(1460)).withUnsafeBytes {
                #expect(MSSClamp.isTCPSYN($0, linkHeaderLength: 0))
            }
        }
        for fragment: UInt16 in [0x2000, 0x0001, 0x6000, 0x4001, 0x1FFF] {
            let segment = mssSegment(v6: false, options: MSSOption.mss(1460), fragment: fragment)
            #expect(!mssClamp(segment).changed, "fragment field \(fragment)")
        }
        #expect(mssClamp(mssSegment(v6: false, options: MSSOption.mss(1460), fragment: 0)).changed)
        var udp = mssSegment(v6: false, options: MSSOption.mss(1460))
        udp[9] = 17
        #expect(!mssClamp(udp).changed)
        var hopByHop = mssSegment(v6: true, options: MSSOption.mss(1460))
        hopByHop[6] = 0
        #expect(!mssClamp(hopByHop).changed)
        var version5 = mssSegment(v6: false, options: MSSOption.mss(1460))
        version5[0] = 0x55
        #expect(!mssClamp(version5).changed)
    }

    @Test("IP and TCP lengths that do not fit: false")
    func badLengths() {
        for v6 in [false, true] {
            let syn = mssSegment(v6: v6, options: MSSOption.mss(1460))
            let tcp = mssTCPOffset(syn)
            var longer = syn
            offloadPutBE16(&longer, v6 ? 4 : 2, offloadBE16(syn, v6 ? 4 : 2) + 1)
            #expect(!mssClamp(longer).changed)
            var shortTCP = syn
            shortTCP[tcp + 12] = 0x40  // data offset 4
            #expect(!mssClamp(shortTCP).changed)
            var longTCP = syn
            longTCP[tcp + 12] = 0x70  // 28 bytes of header in a 24-byte segment
            #expect(!mssClamp(longTCP).changed)
        }
        var shortIHL = mssSegment(v6: false, options: MSSOption.mss(1460))
        shortIHL[0] = 0x44
        #expect(!mssClamp(shortIHL).changed)
        // Padding after the IP packet is allowed and left alone.
        let padded = mssSegment(v6: false, options: MSSOption.mss(1460)) + [0xEE, 0xEE]
        let (changed, after) = mssClamp(padded)
        #expect(changed && after.suffix(2) == [0xEE, 0xEE])
    }

    @Test("tap mode: Ethernet header, one 802.1Q or 802.1ad tag; two tags or a wrong ethertype: false")
    func tapMode() {
        for v6 in [false, true] {
            let syn = mssSegment(v6: v6, options: mssLinuxOptions)
            let expected = v6 ? 1360 : 1380
            let tagged8021ad = offloadMACs + [0x88, 0xA8, 0x00, 0x07] + (v6 ? [0x86, 0xDD] : [0x08, 0x00])
            for link in [offloadEthernetHeader(v6: v6), offloadEthernetHeader(v6: v6, tags: [7]), tagged8021ad] {
                let frame = link + syn
                let (changed, after) = mssClamp(frame, link: EthernetHeader.size)
                #expect(changed)
                #expect(Array(after[..<link.count]) == link)
                mssCheckClamped(syn, Array(after[link.count...]), valueOffset: 22, expected: expected)
                // The same frame read as tun mode, or with an unknown link header length: false.
                #expect(!mssClamp(frame, link: 0).changed)
                #expect(!mssClamp(frame, link: link.count).changed || link.count == EthernetHeader.size)
            }
            #expect(!mssClamp(offloadEthernetHeader(v6: v6, tags: [7, 8]) + syn, link: EthernetHeader.size).changed)
            #expect(!mssClamp(offloadEthernetHeader(v6: !v6) + syn, link: EthernetHeader.size).changed)
            #expect(!mssClamp(offloadMACs + [0x08, 0x06] + syn, link: EthernetHeader.size).changed)
            #expect(!mssClamp(offloadEthernetHeader(v6: v6) + syn, link: 18).changed)
            #expect(!mssClamp(syn, link: -1).changed)
        }
    }

    @Test("every truncation of a valid SYN (tun and tap) is false and stays in bounds")
    func truncations() {
        for v6 in [false, true] {
            let syn = mssSegment(v6: v6, options: mssLinuxOptions, payload: [9, 9])
            for link in [[], offloadEthernetHeader(v6: v6), offloadEthernetHeader(v6: v6, tags: [3])] {
                let frame = link + syn
                for length in 0..<frame.count {
                    #expect(!mssClamp(Array(frame[..<length]), link: link.isEmpty ? 0 : 14).changed, "length \(length)")
                }
                #expect(mssClamp(frame, link: link.isEmpty ? 0 : 14).changed)
            }
            // Truncations whose IP length fields say so: any result, but in bounds.
            for length in 0..<syn.count {
                var cut = Array(syn[..<length])
                if length >= 6 { offloadPutBE16(&cut, v6 ? 4 : 2, v6 ? max(0, length - 40) : length) }
                _ = mssClamp(cut)
            }
        }
    }

    @Test("10,000 seeded random mutations of a SYN: no crash, in bounds, false leaves it alone")
    func mutations() {
        var entropy = SeededEntropy(seed: 0x4D55)
        let bases: [(packet: [UInt8], link: Int)] = [
            (mssSegment(v6: false, options: mssLinuxOptions), 0),
            (mssSegment(v6: true, options: mssLinuxOptions), 0),
            (mssSegment(v6: false, options: MSSOption.nop + MSSOption.mss(1460) + MSSOption.windowScale), 0),
            (offloadEthernetHeader(v6: false, tags: [5]) + mssSegment(v6: false, options: mssLinuxOptions), 14),
            (offloadEthernetHeader(v6: true) + mssSegment(v6: true, options: mssLinuxOptions), 14),
        ]
        var clamped = 0
        for round in 0..<10_000 {
            let base = bases[round % bases.count]
            var packet = base.packet
            let edits = 1 + Int(entropy.nextUInt64() % 4)
            for _ in 0..<edits {
                let index = Int(entropy.nextUInt64() % UInt64(packet.count))
                packet[index] = UInt8(truncatingIfNeeded: entropy.nextUInt64())
            }
            if entropy.nextUInt64() % 4 == 0 {
                packet = Array(packet[..<Int(entropy.nextUInt64() % UInt64(packet.count + 1))])
            }
            if mssClamp(packet, link: base.link, mss4: 1380, mss6: 1360).changed { clamped += 1 }
        }
        #expect(clamped > 0)
        // Pure garbage too.
        for _ in 0..<2000 {
            let garbage = offloadRandomBytes(&entropy, Int(entropy.nextUInt64() % 120))
            _ = mssClamp(garbage, link: 0)
            _ = mssClamp(garbage, link: 14)
        }
    }

    @Test("10,000 pre-checks and clamps allocate nothing")
    func allocationFree() {
        let syn = mssSegment(v6: false, options: MSSOption.nop + MSSOption.mss(1460) + MSSOption.windowScale)
        var storage = syn
        var changed = 0
        storage.withUnsafeMutableBytes { raw in
            vpnd_allocations_begin()
            for round in 0..<10_000 {
                raw[20 + 23] = 0x05
                raw[20 + 24] = 0xB4
                if MSSClamp.isTCPSYN(UnsafeRawBufferPointer(raw), linkHeaderLength: 0),
                    MSSClamp.clamp(raw, linkHeaderLength: 0, maximumSegmentSize4: 1000 + round % 300, maximumSegmentSize6: 1360)
                {
                    changed += 1
                }
            }
            let allocations = vpnd_allocations_end()
            #expect(allocations == 0)
        }
        #expect(changed == 10_000)
    }
}
