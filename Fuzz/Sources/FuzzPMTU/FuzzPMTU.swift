// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore

// Fuzz target (e): MSSClamp and ICMPTooBig on arbitrary packets.
//
// Input: a control byte (bit 0: tap mode, an Ethernet header of 14 bytes in front, for the MSS
// clamp), a byte of extra capacity past the packet, two bytes choosing the MTU (1000 + value mod
// 1000; the MSS maxima are the MTU less 40 and 60), then the packet. The packet lies in a heap
// buffer of exactly its length plus the extra capacity, so AddressSanitizer sees any access past
// it. Invariants: the clamp changes nothing when it returns false, only a packet isTCPSYN accepts,
// keeps the one's complement sum of the packet (its checksum stays as right or wrong as it was),
// and a second clamp finds nothing left to do; ICMPTooBig changes nothing when it returns nil,
// else returns an error of 28...576 (IPv4) or 48...1280 (IPv6) bytes within the capacity whose
// checksums verify.

/// The one's complement sum of `bytes` folded to 16 bits, reduced modulo 0xFFFF (so 0 and 0xFFFF agree).
func sumModulo(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
    let folded = InternetChecksum.fold(InternetChecksum.sum(bytes))
    return folded == 0xFFFF ? 0 : folded
}

func checkClamp(_ packet: UnsafeMutableRawBufferPointer, link: Int, mtu: Int) {
    let before = [UInt8](packet)
    let syn = MSSClamp.isTCPSYN(UnsafeRawBufferPointer(packet), linkHeaderLength: link)
    let changed = MSSClamp.clamp(packet, linkHeaderLength: link, maximumSegmentSize4: mtu - 40, maximumSegmentSize6: mtu - 60)
    guard changed else {
        invariant(packet.elementsEqual(before), "clamp returned false and changed the packet")
        return
    }
    invariant(syn, "clamp changed a packet isTCPSYN rejects")
    let oldSum = before.withUnsafeBytes { sumModulo($0) }
    invariant(sumModulo(UnsafeRawBufferPointer(packet)) == oldSum, "clamp changed the packet's one's complement sum")
    invariant(
        !MSSClamp.clamp(packet, linkHeaderLength: link, maximumSegmentSize4: mtu - 40, maximumSegmentSize6: mtu - 60),
        "a second clamp changed the packet again")
}

func checkTooBig(_ buffer: UnsafeMutableRawBufferPointer, count: Int, mtu: Int) {
    let before = [UInt8](buffer)
    guard let length = ICMPTooBig.write(into: buffer, count: count, mtu: mtu) else {
        invariant(buffer.elementsEqual(before), "write returned nil and changed the buffer")
        return
    }
    invariant(length <= buffer.count, "an error of \(length) bytes in a capacity of \(buffer.count)")
    let error = UnsafeRawBufferPointer(rebasing: buffer[..<length])
    invariant(buffer[length...].elementsEqual(before[length...]), "write changed bytes past the error")
    switch error[0] >> 4 {
    case 4:
        invariant(length >= 28 && length <= 576, "an IPv4 error of \(length) bytes")
        invariant(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: error[..<20])) == 0, "IPv4 header checksum")
        invariant(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: error[20...])) == 0, "ICMP checksum")
    case 6:
        invariant(length >= 48 && length <= 1280, "an IPv6 error of \(length) bytes")
        let pseudo = InternetChecksum.pseudoHeaderSum(addresses: error.baseAddress! + 8, addressSize: 16, protocol: 58, length: length - 40)
        invariant(InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: error[40...]), initial: pseudo) == 0, "ICMPv6 checksum")
    default:
        invariant(false, "an error that is neither IPv4 nor IPv6")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let control = input.byte()
    let extra = Int(input.byte())
    let mtu = 1000 + (Int(input.byte()) << 8 | Int(input.byte())) % 1000
    let packet = input.rest
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: packet.count + extra, alignment: 1)
    defer { buffer.deallocate() }

    // The clamp sees exactly the packet.
    let exact = UnsafeMutableRawBufferPointer(rebasing: buffer[..<packet.count])
    if packet.count > 0 { exact.copyMemory(from: packet) }
    checkClamp(exact, link: control & 1 == 0 ? 0 : EthernetHeader.size, mtu: mtu)

    // The error is written into the packet and its extra capacity.
    if packet.count > 0 { exact.copyMemory(from: packet) }
    if extra > 0 { UnsafeMutableRawBufferPointer(rebasing: buffer[packet.count...]).initializeMemory(as: UInt8.self, repeating: 0xEE) }
    checkTooBig(buffer, count: packet.count, mtu: mtu)
    return 0
}

// MARK: - Seeds

func ipv4(protocol proto: UInt8, body: [UInt8], flags: UInt8 = 0x40) -> [UInt8] {
    let total = 20 + body.count
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, flags, 0, 64, proto, 0, 0,
        10, 8, 0, 1, 10, 8, 0, 2]
    let sum = p.withUnsafeBytes { InternetChecksum.checksum($0) }
    p[10] = UInt8(sum >> 8)
    p[11] = UInt8(sum & 0xFF)
    return p + body
}

func ipv6(nextHeader: UInt8, body: [UInt8]) -> [UInt8] {
    [0x60, 0, 0, 0, UInt8(body.count >> 8), UInt8(body.count & 0xFF), nextHeader, 64]
        + [0xFD] + [UInt8](repeating: 0, count: 14) + [1] + [0xFD] + [UInt8](repeating: 0, count: 14) + [2] + body
}

/// A TCP SYN header with MSS 1460, SACK permitted, timestamps, NOP, window scale (checksum 0:
/// the clamp does not check it).
func syn(oddMSS: Bool = false) -> [UInt8] {
    let options: [UInt8] = oddMSS
        ? [1, 2, 4, 0x05, 0xB4, 1, 1, 1]
        : [2, 4, 0x05, 0xB4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7]
    let header: [UInt8] = [0x9C, 0x40, 0x01, 0xBB, 1, 2, 3, 4, 0, 0, 0, 0, UInt8((20 + options.count) / 4) << 4, 0x02,
        0xFA, 0xF0, 0, 0, 0, 0]
    return header + options
}

let ethernet4: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]
let vlan6: [UInt8] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0x00, 0, 7, 0x86, 0xDD]

@_cdecl("FuzzPMTU_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: {
        let control0: [UInt8] = [0, 16, 0x01, 0xA4]  // tun, 16 bytes extra, mtu 1420
        let control1: [UInt8] = [1, 0, 0x01, 0xA4]  // tap, no extra
        let big = [UInt8](repeating: 0x5A, count: 1360)
        return [
            Seed("syn-ipv4", control0 + ipv4(protocol: 6, body: syn())),
            Seed("syn-ipv6", control0 + ipv6(nextHeader: 6, body: syn())),
            Seed("syn-ipv4-odd-mss", control0 + ipv4(protocol: 6, body: syn(oddMSS: true))),
            Seed("syn-tap-ipv4", control1 + ethernet4 + ipv4(protocol: 6, body: syn())),
            Seed("syn-tap-vlan-ipv6", control1 + vlan6 + ipv6(nextHeader: 6, body: syn(oddMSS: true))),
            Seed("big-ipv4-df", control1 + ipv4(protocol: 17, body: big)),
            Seed("big-ipv6", control0 + ipv6(nextHeader: 17, body: big)),
            Seed("icmpv6-echo", control0 + ipv6(nextHeader: 58, body: [128, 0, 0, 0] + big)),
            Seed("ipv6-fragment", control0 + ipv6(nextHeader: 44, body: [58, 0, 0, 1, 0, 0, 0, 9, 1, 0, 0, 0] + big)),
        ]
    }, callback: fuzzOneInput)
}
