// SPDX-License-Identifier: MIT
// Offload figures: GSOSplitter on a 64 KiB IPv4/TCP super-packet (copy + per-segment header fixes +
// full TCP checksum), InternetChecksum alone, and TCPCoalescer merging the segments back.
import VPNBasics
import VPNCore

/// A 64 KiB IPv4/TCP super-packet (10.8.0.1 → 10.8.0.2, ACK|PSH) as a tun read: virtio-net header first.
func offloadBenchmarkRead(gsoSize: Int) -> [UInt8] {
    let total = 65_535
    var p = [UInt8](repeating: 0, count: total)
    for i in 40..<total { p[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
    p[0] = 0x45
    p[2] = UInt8(total >> 8)
    p[3] = UInt8(total & 0xFF)
    p[6] = 0x40
    p[8] = 64
    p[9] = 6
    p[12] = 10; p[13] = 8; p[15] = 1
    p[16] = 10; p[17] = 8; p[19] = 2
    p[20] = 0x9C; p[21] = 0x40; p[22] = 0x14; p[23] = 0x51
    p[32] = 0x50
    p[33] = 0x18
    p[34] = 0xFF; p[35] = 0xFF
    var header = [UInt8](repeating: 0, count: VirtioNetHeader.size)
    header.withUnsafeMutableBytes {
        VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 40,
            gsoSize: UInt16(gsoSize), checksumStart: 20, checksumOffset: 16
        ).write(into: $0)
    }
    return header + p
}

func benchmarkOffload() {
    let gsoSize = 1380  // MSS for a 1420-byte tunnel MTU
    let read = offloadBenchmarkRead(gsoSize: gsoSize)
    let payloadBits = Double(65_535 - 40) * 8
    let slab = PacketSlab(slotSize: 2048, slotCount: 64)
    let batch = UnsafeMutableBufferPointer<PacketBuffer>.allocate(capacity: 64)
    for i in 0..<64 { (batch.baseAddress! + i).initialize(to: slab.buffer(i, headroom: 16)) }
    defer { batch.deallocate() }

    var segments = 0
    let splitRate = read.withUnsafeBytes { raw in
        rate(batch: 16) {
            for i in 0..<64 { batch[i].reset(headroom: 16) }
            if case .segments(let n) = GSOSplitter.split(virtioPacket: raw, into: batch) { segments = n }
        }
    }
    if segments != 48 { fatalError("vpnd-microbench: the super-packet split into \(segments) segments, not 48") }

    let checksumRates = [1420, 65_535].map { length in
        read.withUnsafeBytes { raw in
            var sink: UInt16 = 0
            let r = rate(batch: 256) {
                sink &+= InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: raw[10..<(10 + length)]))
            }
            if sink == 0x1234 { print("") }  // keep the result alive
            return (length, r)
        }
    }

    // Coalescing: the 48 segments back into one super-packet (copy-in of the segments included).
    let coalescer = TCPCoalescer(capacity: 64)
    let inputSlab = PacketSlab(slotSize: 2048, slotCount: 48)
    let inputs = UnsafeMutableBufferPointer<PacketBuffer>.allocate(capacity: 48)
    for i in 0..<48 { (inputs.baseAddress! + i).initialize(to: inputSlab.buffer(i, headroom: 16)) }
    let superSlab = PacketSlab(slotSize: 65_536 + 64, slotCount: 1)
    let supers = UnsafeMutableBufferPointer<PacketBuffer>.allocate(capacity: 1)
    supers.baseAddress!.initialize(to: superSlab.buffer(0, headroom: 0))
    let results = UnsafeMutableBufferPointer<PacketBuffer>.allocate(capacity: 48)
    results.initialize(repeating: inputs[0])
    defer {
        inputs.deallocate()
        supers.deallocate()
        results.deallocate()
    }
    var writes = 0
    let coalesceRate = rate(batch: 16) {
        for i in 0..<48 {
            inputs[i].reset(headroom: 16)
            inputs[i].append(contentsOf: UnsafeRawBufferPointer(batch[i].bytes))
        }
        supers[0].reset(headroom: 0)
        writes = coalescer.coalesce(inputs, superBuffers: supers, into: results).writeCount
    }
    if writes != 1 { fatalError("vpnd-microbench: 48 segments coalesced into \(writes) writes, not 1") }

    print("offload, 64 KiB IPv4/TCP super-packet, gso_size \(gsoSize) (48 segments), one core:")
    print("  split + checksums   \(format(splitRate * payloadBits / 1e9)) Gbit/s of payload"
        + " (\(format(1e6 / splitRate)) µs per super-packet, \(format(1e9 / splitRate / 48, decimals: 0)) ns per segment)")
    print("  coalesce 48 -> 1    \(format(coalesceRate * payloadBits / 1e9)) Gbit/s of payload"
        + " (\(format(1e6 / coalesceRate)) µs per batch, incl. checksum checks and the segments' copy-in)")
    for (length, r) in checksumRates {
        print("  checksum \(length) B  \(format(r * Double(length) * 8 / 1e9)) Gbit/s")
    }
}
