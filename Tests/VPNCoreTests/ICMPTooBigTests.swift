// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
import VPNCore
import VPNTesting

// MARK: - Test support

let icmpSource4: [UInt8] = [10, 8, 0, 1]
let icmpDestination4: [UInt8] = [10, 8, 0, 2]
let icmpSource6: [UInt8] = [0xFD] + [UInt8](repeating: 0, count: 14) + [1]
let icmpDestination6: [UInt8] = [0xFD] + [UInt8](repeating: 0, count: 14) + [2]

/// An IPv4 packet: a 20-byte header (header checksum correct) then `body`.
func icmpIPv4(
    protocol proto: UInt8 = 6, body: [UInt8], fragment: UInt16 = 0x4000, source: [UInt8] = icmpSource4,
    destination: [UInt8] = icmpDestination4
) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: 20)
    p[0] = 0x45
    offloadPutBE16(&p, 2, 20 + body.count)
    offloadPutBE16(&p, 4, 0x1234)
    offloadPutBE16(&p, 6, Int(fragment))
    p[8] = 63
    p[9] = proto
    p.replaceSubrange(12..<16, with: source)
    p.replaceSubrange(16..<20, with: destination)
    offloadPutBE16(&p, 10, Int(offloadReferenceChecksum(p)))
    return p + body
}

/// An IPv6 packet: the fixed header then `body` (which holds any extension headers).
func icmpIPv6(
    nextHeader: UInt8 = 6, body: [UInt8], source: [UInt8] = icmpSource6, destination: [UInt8] = icmpDestination6
) -> [UInt8] {
    var p: [UInt8] = [0x60, 0x0A, 0xBC, 0xDE, 0, 0, nextHeader, 63]
    offloadPutBE16(&p, 4, body.count)
    return p + source + destination + body
}

/// Runs ``ICMPTooBig/write(into:count:mtu:)`` on `packet` in a buffer of `capacity` bytes (the
/// packet, then 0xEE) followed by 16 guard bytes outside it. Checks that the guard is intact, that
/// nil leaves the buffer alone, that a length fits the capacity and that nothing at or past the
/// length was written. Returns the error (the bytes up to the length) or nil.
func icmpWrite(
    _ packet: [UInt8], count: Int? = nil, capacity: Int? = nil, mtu: Int, sourceLocation: SourceLocation = #_sourceLocation
) -> [UInt8]? {
    let count = count ?? packet.count
    let capacity = capacity ?? packet.count
    let buffer = packet + [UInt8](repeating: 0xEE, count: max(0, capacity - packet.count))
    let guardBytes = [UInt8](repeating: 0xA5, count: 16)
    var storage = buffer + guardBytes
    let length = storage.withUnsafeMutableBytes { raw in
        ICMPTooBig.write(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<capacity]), count: count, mtu: mtu)
    }
    #expect(Array(storage[capacity...]) == guardBytes, "wrote past the capacity", sourceLocation: sourceLocation)
    guard let length else {
        #expect(Array(storage[..<capacity]) == buffer, "nil but the buffer changed", sourceLocation: sourceLocation)
        return nil
    }
    #expect(length <= capacity, sourceLocation: sourceLocation)
    guard length <= capacity else { return nil }
    #expect(storage[length..<capacity] == buffer[length..<capacity], "wrote past the length", sourceLocation: sourceLocation)
    return Array(storage[..<length])
}

/// Checks an IPv4 fragmentation-needed error for `original`, quoting `quoted` bytes of it.
func icmpCheckIPv4(
    _ error: [UInt8], original: [UInt8], mtu: Int, quoted: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(error.count == 28 + quoted, sourceLocation: sourceLocation)
    guard error.count == 28 + quoted, error.count >= 28 else { return }
    #expect(error.count <= 576, sourceLocation: sourceLocation)
    #expect(error[0] == 0x45 && error[1] == 0xC0, sourceLocation: sourceLocation)
    #expect(offloadBE16(error, 2) == error.count, sourceLocation: sourceLocation)
    #expect(offloadBE16(error, 4) == 0 && offloadBE16(error, 6) == 0, "id 0, DF clear", sourceLocation: sourceLocation)
    #expect(error[8] == 64 && error[9] == 1, sourceLocation: sourceLocation)
    #expect(offloadReferenceSum(Array(error[0..<20])) == 0xFFFF, "IPv4 header checksum", sourceLocation: sourceLocation)
    #expect(Array(error[12..<16]) == Array(original[16..<20]), "source = original destination", sourceLocation: sourceLocation)
    #expect(Array(error[16..<20]) == Array(original[12..<16]), "destination = original source", sourceLocation: sourceLocation)
    #expect(error[20] == 3 && error[21] == 4, sourceLocation: sourceLocation)
    #expect(offloadBE16(error, 24) == 0 && offloadBE16(error, 26) == mtu, sourceLocation: sourceLocation)
    #expect(offloadReferenceSum(Array(error[20...])) == 0xFFFF, "ICMP checksum", sourceLocation: sourceLocation)
    #expect(Array(error[28...]) == Array(original[..<quoted]), "quoted original", sourceLocation: sourceLocation)
}

/// Checks an IPv6 packet-too-big error for `original`, quoting `quoted` bytes of it.
func icmpCheckIPv6(
    _ error: [UInt8], original: [UInt8], mtu: Int, quoted: Int, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(error.count == 48 + quoted, sourceLocation: sourceLocation)
    guard error.count == 48 + quoted, error.count >= 48 else { return }
    #expect(error.count <= 1280, sourceLocation: sourceLocation)
    #expect(Array(error[0..<4]) == [0x60, 0, 0, 0], "version 6, traffic class and flow label 0", sourceLocation: sourceLocation)
    #expect(offloadBE16(error, 4) == error.count - 40, sourceLocation: sourceLocation)
    #expect(error[6] == 58 && error[7] == 64, sourceLocation: sourceLocation)
    #expect(Array(error[8..<24]) == Array(original[24..<40]), "source = original destination", sourceLocation: sourceLocation)
    #expect(Array(error[24..<40]) == Array(original[8..<24]), "destination = original source", sourceLocation: sourceLocation)
    #expect(error[40] == 2 && error[41] == 0, sourceLocation: sourceLocation)
    #expect(offloadBE32(error, 44) == UInt32(mtu), sourceLocation: sourceLocation)
    // RFC 4443 §2.3 / RFC 8200 §8.1 pseudo-header, spelled out: source, destination, 32-bit
    // upper-layer length, three zero bytes, next header 58.
    let length = error.count - 40
    let pseudo = Array(error[8..<40]) + [UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF),
        UInt8(length & 0xFF), 0, 0, 0, 58]
    #expect(offloadReferenceSum(pseudo + Array(error[40...])) == 0xFFFF, "ICMPv6 checksum", sourceLocation: sourceLocation)
    #expect(Array(error[48...]) == Array(original[..<quoted]), "quoted original", sourceLocation: sourceLocation)
}

// MARK: - Tests

@Suite("Offload: ICMP too-big errors")
struct ICMPTooBigTests {
    @Test("IPv4 TCP, 1400 bytes with DF, mtu 1220: fragmentation needed, 576 bytes")
    func ipv4() {
        var entropy = SeededEntropy(seed: 4)
        let packet = OffloadSuperPacket(v6: false, tcp: true, payload: offloadRandomBytes(&entropy, 1360), gsoSize: 1360).bytes
        #expect(packet.count == 1400)
        let error = icmpWrite(packet, mtu: 1220)
        #expect(error?.count == 576)
        if let error { icmpCheckIPv4(error, original: packet, mtu: 1220, quoted: 548) }
    }

    @Test("IPv4 without DF, a later fragment, DF with MF (the first fragment)")
    func ipv4Fragments() {
        let body = [UInt8](repeating: 7, count: 600)
        #expect(icmpWrite(icmpIPv4(body: body, fragment: 0), mtu: 576) == nil)
        #expect(icmpWrite(icmpIPv4(body: body, fragment: 0x2000), mtu: 576) == nil)
        #expect(icmpWrite(icmpIPv4(body: body, fragment: 0x4001), mtu: 576) == nil)
        #expect(icmpWrite(icmpIPv4(body: body, fragment: 0x6001), mtu: 576) == nil)
        let first = icmpIPv4(body: body, fragment: 0x6000)
        if let error = icmpWrite(first, mtu: 576) { icmpCheckIPv4(error, original: first, mtu: 576, quoted: 548) }
        else { Issue.record("no error for a first fragment with DF") }
    }

    @Test("a short IPv4 packet is quoted whole; padding past its total length is not")
    func ipv4Short() {
        let packet = icmpIPv4(protocol: 17, body: [UInt8](repeating: 3, count: 80))
        if let error = icmpWrite(packet, capacity: 2048, mtu: 1000) { icmpCheckIPv4(error, original: packet, mtu: 1000, quoted: 100) }
        else { Issue.record("nil") }
        if let error = icmpWrite(packet + [1, 2, 3, 4], capacity: 2048, mtu: 1000) {
            icmpCheckIPv4(error, original: packet, mtu: 1000, quoted: 100)
        } else { Issue.record("nil") }
        // A header that claims more than there is.
        #expect(icmpWrite(packet, count: 99, capacity: 2048, mtu: 1000) == nil)
        // IHL below 5, or above the total length.
        var badIHL = packet
        badIHL[0] = 0x44
        #expect(icmpWrite(badIHL, mtu: 1000) == nil)
        var longIHL = icmpIPv4(protocol: 17, body: [1, 2])
        longIHL[0] = 0x46
        #expect(icmpWrite(longIHL, mtu: 1000) == nil)
    }

    @Test("known answer computed with python3: IPv4 UDP of 48 bytes, mtu 1400; IPv6 UDP of 60 bytes, mtu 1280")
    func knownAnswers() {
        // The python3 script built the originals with TTL / hop limit 64.
        var v4 = icmpIPv4(protocol: 17, body: (0..<28).map { UInt8($0) }, source: [192, 0, 2, 1], destination: [198, 51, 100, 7])
        v4[8] = 64
        offloadPutBE16(&v4, 10, 0)
        offloadPutBE16(&v4, 10, Int(offloadReferenceChecksum(Array(v4[0..<20]))))
        #expect(offloadBE16(v4, 10) == 0x3C4D)
        if let error = icmpWrite(v4, capacity: 2048, mtu: 1400) {
            #expect(error.count == 76)
            #expect(offloadBE16(error, 10) == 0x8DB5)
            #expect(offloadBE16(error, 22) == 0x40BF)
            icmpCheckIPv4(error, original: v4, mtu: 1400, quoted: 48)
        } else { Issue.record("nil") }
        let a = [UInt8](repeating: 0, count: 14)
        var v6 = icmpIPv6(
            nextHeader: 17, body: (0..<20).map { UInt8($0) }, source: [0x20, 0x01, 0x0D, 0xB8] + a[..<11] + [1],
            destination: [0x20, 0x01, 0x0D, 0xB8] + a[..<11] + [2])
        v6.replaceSubrange(0..<4, with: [0x60, 0, 0, 0])
        v6[7] = 64
        if let error = icmpWrite(v6, capacity: 2048, mtu: 1280) {
            #expect(error.count == 108)
            #expect(offloadBE16(error, 42) == 0x75DE)
            icmpCheckIPv6(error, original: v6, mtu: 1280, quoted: 60)
        } else { Issue.record("nil") }
    }

    @Test("IPv6 TCP, 1400 bytes, mtu 1280: packet too big, 1280 bytes; mtu 1279: nil")
    func ipv6() {
        var entropy = SeededEntropy(seed: 6)
        let packet = OffloadSuperPacket(v6: true, tcp: true, payload: offloadRandomBytes(&entropy, 1340), gsoSize: 1340).bytes
        #expect(packet.count == 1400)
        let error = icmpWrite(packet, mtu: 1280)
        #expect(error?.count == 1280)
        if let error { icmpCheckIPv6(error, original: packet, mtu: 1280, quoted: 1232) }
        #expect(icmpWrite(packet, mtu: 1279) == nil)
        if let error = icmpWrite(packet, mtu: 1350) { icmpCheckIPv6(error, original: packet, mtu: 1350, quoted: 1232) }
        else { Issue.record("nil") }
        // A short packet is quoted whole.
        let short = icmpIPv6(nextHeader: 17, body: [UInt8](repeating: 9, count: 100))
        if let error = icmpWrite(short, capacity: 4096, mtu: 9000) { icmpCheckIPv6(error, original: short, mtu: 9000, quoted: 140) }
        else { Issue.record("nil") }
        // A payload length past the packet.
        #expect(icmpWrite(short, count: 139, capacity: 4096, mtu: 1280) == nil)
    }

    @Test("IPv4 ICMP errors get no error; other ICMP types do")
    func ipv4ICMP() {
        let body = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 1, count: 600)
        for type: UInt8 in [3, 4, 5, 11, 12] {
            var b = body
            b[0] = type
            #expect(icmpWrite(icmpIPv4(protocol: 1, body: b), mtu: 576) == nil, "type \(type)")
        }
        for type: UInt8 in [0, 8, 13] {
            var b = body
            b[0] = type
            let packet = icmpIPv4(protocol: 1, body: b)
            if let error = icmpWrite(packet, mtu: 576) { icmpCheckIPv4(error, original: packet, mtu: 576, quoted: 548) }
            else { Issue.record("nil for ICMP type \(type)") }
        }
        // ICMP without its type byte.
        #expect(icmpWrite(icmpIPv4(protocol: 1, body: []), capacity: 100, mtu: 576) == nil)
    }

    @Test("IPv6: ICMPv6 errors (types < 128), also behind extension headers, get no error; echo request does")
    func ipv6ICMP() {
        let body = [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 1, count: 1300)
        for type: UInt8 in [1, 2, 3, 4, 127] {
            var b = body
            b[0] = type
            #expect(icmpWrite(icmpIPv6(nextHeader: 58, body: b), mtu: 1280) == nil, "type \(type)")
            // Behind a hop-by-hop header (8 bytes) and a destination options header (16 bytes).
            let extensions: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0] + [58, 1] + [UInt8](repeating: 1, count: 14)
            #expect(icmpWrite(icmpIPv6(nextHeader: 0, body: extensions + b), mtu: 1280) == nil, "type \(type)")
            // Behind a first fragment header.
            let fragment: [UInt8] = [58, 0, 0, 1, 0, 0, 0, 9]
            #expect(icmpWrite(icmpIPv6(nextHeader: 44, body: fragment + b), mtu: 1280) == nil, "type \(type)")
        }
        for type: UInt8 in [128, 129, 135, 255] {
            var b = body
            b[0] = type
            let packet = icmpIPv6(nextHeader: 58, body: b)
            if let error = icmpWrite(packet, mtu: 1280) { icmpCheckIPv6(error, original: packet, mtu: 1280, quoted: 1232) }
            else { Issue.record("nil for ICMPv6 type \(type)") }
        }
        // ICMPv6 without its type byte; an extension header past the packet.
        #expect(icmpWrite(icmpIPv6(nextHeader: 58, body: []), capacity: 100, mtu: 1280) == nil)
        #expect(icmpWrite(icmpIPv6(nextHeader: 0, body: [6, 0, 1, 4]), capacity: 100, mtu: 1280) == nil)
        #expect(icmpWrite(icmpIPv6(nextHeader: 0, body: [6, 1, 1, 4, 0, 0, 0, 0]), capacity: 100, mtu: 1280) == nil)
    }

    @Test("IPv6 fragments: a later fragment gets no error, the first does")
    func ipv6Fragments() {
        let payload = [UInt8](repeating: 5, count: 1300)
        #expect(icmpWrite(icmpIPv6(nextHeader: 44, body: [6, 0, 0x05, 0x00, 0, 0, 0, 1] + payload), mtu: 1280) == nil)
        let first = icmpIPv6(nextHeader: 44, body: [6, 0, 0x00, 0x01, 0, 0, 0, 1] + payload)
        if let error = icmpWrite(first, mtu: 1280) { icmpCheckIPv6(error, original: first, mtu: 1280, quoted: 1232) }
        else { Issue.record("nil for a first fragment") }
    }

    @Test("unspecified, loopback, multicast and broadcast sources (and destinations): nil")
    func addresses() {
        let body = [UInt8](repeating: 2, count: 600)
        for bad: [UInt8] in [[0, 0, 0, 0], [0, 1, 2, 3], [127, 0, 0, 1], [224, 0, 0, 1], [239, 255, 255, 250], [255, 255, 255, 255]] {
            #expect(icmpWrite(icmpIPv4(body: body, source: bad), mtu: 576) == nil, "source \(bad)")
            #expect(icmpWrite(icmpIPv4(body: body, destination: bad), mtu: 576) == nil, "destination \(bad)")
        }
        let zero = [UInt8](repeating: 0, count: 16)
        let loopback = zero[..<15] + [1]
        let multicast = [0xFF, 0x02] + zero[..<13] + [1]
        let body6 = [UInt8](repeating: 2, count: 1300)
        for bad in [zero, Array(loopback), multicast] {
            #expect(icmpWrite(icmpIPv6(body: body6, source: bad), mtu: 1280) == nil, "source \(bad)")
            #expect(icmpWrite(icmpIPv6(body: body6, destination: bad), mtu: 1280) == nil, "destination \(bad)")
        }
        // A global unicast and a link-local source are fine.
        let global = [0x20, 0x01, 0x0D, 0xB8] + zero[..<11] + [7]
        let linkLocal = [0xFE, 0x80] + zero[..<13] + [7]
        for good in [global, linkLocal] { #expect(icmpWrite(icmpIPv6(body: body6, source: good), mtu: 1280) != nil) }
        #expect(icmpWrite(icmpIPv4(body: body, source: [192, 168, 1, 1]), mtu: 576) != nil)
    }

    @Test("IPv4 mtu outside 68...65535, IPv6 mtu above 2^32 - 1: nil")
    func mtuRange() {
        let v4 = icmpIPv4(body: [UInt8](repeating: 2, count: 600))
        #expect(icmpWrite(v4, mtu: 67) == nil)
        #expect(icmpWrite(v4, mtu: 65_536) == nil)
        #expect(icmpWrite(v4, mtu: -1) == nil)
        if let error = icmpWrite(v4, mtu: 68) { icmpCheckIPv4(error, original: v4, mtu: 68, quoted: 548) }
        let v6 = icmpIPv6(body: [UInt8](repeating: 2, count: 1300))
        #expect(icmpWrite(v6, mtu: 0x1_0000_0000) == nil)
        if let error = icmpWrite(v6, mtu: 0xFFFF_FFFF) { icmpCheckIPv6(error, original: v6, mtu: 0xFFFF_FFFF, quoted: 1232) }
        else { Issue.record("nil") }
    }

    @Test("a capacity smaller than the error needs truncates the quote; below the headers: nil")
    func smallCapacity() {
        let v4 = icmpIPv4(body: [UInt8](repeating: 4, count: 180))  // 200 bytes, 228 needed
        if let error = icmpWrite(v4, mtu: 576) { icmpCheckIPv4(error, original: v4, mtu: 576, quoted: 172) }
        else { Issue.record("nil") }
        let tiny4 = icmpIPv4(body: [1, 2, 3, 4, 5, 6, 7])  // 27 bytes
        #expect(icmpWrite(tiny4, mtu: 576) == nil)
        if let error = icmpWrite(tiny4, capacity: 28, mtu: 576) { icmpCheckIPv4(error, original: tiny4, mtu: 576, quoted: 0) }
        else { Issue.record("nil") }
        let v6 = icmpIPv6(body: [UInt8](repeating: 4, count: 260))  // 300 bytes, 348 needed
        if let error = icmpWrite(v6, mtu: 1280) { icmpCheckIPv6(error, original: v6, mtu: 1280, quoted: 252) }
        else { Issue.record("nil") }
        let tiny6 = icmpIPv6(body: [1, 2, 3, 4, 5, 6, 7])  // 47 bytes
        #expect(icmpWrite(tiny6, mtu: 1280) == nil)
        if let error = icmpWrite(tiny6, capacity: 50, mtu: 1280) { icmpCheckIPv6(error, original: tiny6, mtu: 1280, quoted: 2) }
        else { Issue.record("nil") }
        // A count beyond the capacity, an empty buffer.
        var one: [UInt8] = [0x45]
        let countTooLarge = one.withUnsafeMutableBytes { raw in
            ICMPTooBig.write(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<0]), count: 1, mtu: 1280)
        }
        #expect(countTooLarge == nil)
        #expect(ICMPTooBig.write(into: UnsafeMutableRawBufferPointer(start: nil, count: 0), count: 0, mtu: 1280) == nil)
    }

    @Test("every truncation of valid packets, and random garbage and mutations: nil or bounded, in bounds")
    func truncationsAndGarbage() {
        var entropy = SeededEntropy(seed: 0x1C4B)
        let bases = [
            icmpIPv4(body: offloadRandomBytes(&entropy, 700)),
            icmpIPv4(protocol: 1, body: [8, 0, 0, 0] + offloadRandomBytes(&entropy, 100)),
            icmpIPv6(body: offloadRandomBytes(&entropy, 1400)),
            icmpIPv6(nextHeader: 0, body: [44, 0, 1, 4, 0, 0, 0, 0, 58, 0, 0, 1, 0, 0, 0, 9, 128] + offloadRandomBytes(&entropy, 200)),
        ]
        for packet in bases {
            for length in 0..<packet.count {
                let prefix = Array(packet[..<length])
                let error = icmpWrite(prefix, mtu: 1280)
                if let error { #expect(error.count <= (packet[0] >> 4 == 4 ? 576 : 1280)) }
                // With the length field saying so.
                var cut = prefix
                if length >= 6 {
                    offloadPutBE16(&cut, packet[0] >> 4 == 4 ? 2 : 4, packet[0] >> 4 == 4 ? length : max(0, length - 40))
                }
                _ = icmpWrite(cut, capacity: cut.count + Int(entropy.nextUInt64() % 64), mtu: 1280)
            }
        }
        for round in 0..<10_000 {
            var packet = bases[round % bases.count]
            for _ in 0..<(1 + Int(entropy.nextUInt64() % 4)) {
                let index = Int(entropy.nextUInt64() % UInt64(min(packet.count, 64)))
                packet[index] = UInt8(truncatingIfNeeded: entropy.nextUInt64())
            }
            let count = Int(entropy.nextUInt64() % UInt64(packet.count + 1))
            let capacity = count + Int(entropy.nextUInt64() % 100)
            let mtu = Int(entropy.nextUInt64() % 2000)
            if let error = icmpWrite(Array(packet[..<count]), count: count, capacity: capacity, mtu: mtu) {
                #expect(error.count >= 28 && error.count <= 1280)
            }
        }
        for _ in 0..<2000 {
            let garbage = offloadRandomBytes(&entropy, Int(entropy.nextUInt64() % 200))
            _ = icmpWrite(garbage, capacity: garbage.count + Int(entropy.nextUInt64() % 60), mtu: 1280)
        }
    }

    @Test("10,000 errors written allocate nothing")
    func allocationFree() {
        let v4 = icmpIPv4(body: [UInt8](repeating: 1, count: 1380))
        let v6 = icmpIPv6(body: [UInt8](repeating: 1, count: 1360))
        var storage = [UInt8](repeating: 0, count: 1400)
        var written = 0
        v4.withUnsafeBytes { v4Bytes in
            v6.withUnsafeBytes { v6Bytes in
                storage.withUnsafeMutableBytes { raw in
                    vpnd_allocations_begin()
                    for round in 0..<10_000 {
                        let source = round % 2 == 0 ? v4Bytes : v6Bytes
                        raw.copyMemory(from: source)
                        if ICMPTooBig.write(into: raw, count: 1400, mtu: 1280) != nil { written += 1 }
                    }
                    let allocations = vpnd_allocations_end()
                    #expect(allocations == 0)
                }
            }
        }
        #expect(written == 10_000)
    }
}
