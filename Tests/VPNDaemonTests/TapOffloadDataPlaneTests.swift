// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNDaemon
import VPNTesting

// tap with offloads, end to end through two data planes on fakes: the client's tap hands over
// virtio-net super-frames, the server's tap receives the frames coalesced again.

/// Destination and source MAC of the test frames.
private let tapMACs: [UInt8] = [0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02]

private func virtioBytes(_ header: VirtioNetHeader) -> [UInt8] {
    var raw = [UInt8](repeating: 0, count: VirtioNetHeader.size)
    raw.withUnsafeMutableBytes { header.write(into: $0) }
    return raw
}

/// An Ethernet frame with an IPv4 TCP or UDP super-packet as a tap hands it over: IPv4 header
/// checksum done, the L4 checksum field holding the folded pseudo-header sum (NEEDS_CSUM), and
/// csum_start/hdr_len counted from the start of the frame.
private func tapSuperFrame(tcp: Bool, payload: Int, gsoSize: Int) -> (header: VirtioNetHeader, frame: [UInt8]) {
    let l4Length = tcp ? 20 : 8
    let total = 20 + l4Length + payload
    var ip: [UInt8] = [
        0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, tcp ? 6 : 17, 0, 0,
        10, 9, 0, 2, 10, 9, 0, 1,
    ]
    let ipChecksum = ip.withUnsafeBytes { ~InternetChecksum.fold(InternetChecksum.sum($0)) }
    ip[10] = UInt8(ipChecksum >> 8)
    ip[11] = UInt8(ipChecksum & 0xFF)
    var l4 = [UInt8](repeating: 0, count: l4Length)
    l4[0] = 0x9C; l4[1] = 0x40; l4[2] = 0x14; l4[3] = 0x51
    if tcp {
        l4[6] = 0x03; l4[7] = 0xE8  // sequence 1000
        l4[11] = 1  // acknowledgement 1
        l4[12] = 0x50
        l4[13] = 0x18  // ACK|PSH
        l4[14] = 0xFF; l4[15] = 0xFF
    } else {
        l4[4] = UInt8((8 + payload) >> 8)
        l4[5] = UInt8((8 + payload) & 0xFF)
    }
    let pseudo = ip.withUnsafeBytes {
        InternetChecksum.pseudoHeaderSum(
            addresses: $0.baseAddress! + 12, addressSize: 4, protocol: tcp ? 6 : 17, length: l4Length + payload)
    }
    let field = tcp ? 16 : 6
    let folded = InternetChecksum.fold(pseudo)
    l4[field] = UInt8(folded >> 8)
    l4[field + 1] = UInt8(folded & 0xFF)
    let body = (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let header = VirtioNetHeader(
        flags: VirtioNetHeader.flagNeedsChecksum,
        gsoType: tcp ? VirtioNetHeader.gsoTCPv4 : VirtioNetHeader.gsoUDPL4,
        headerLength: UInt16(14 + 20 + l4Length), gsoSize: UInt16(gsoSize), checksumStart: 34,
        checksumOffset: UInt16(field))
    return (header, tapMACs + [0x08, 0x00] + ip + l4 + body)
}

/// A transport that takes segmented sends (as UDP GSO does) and records them, then sends the
/// datagrams one by one through `inner`.
private final class SegmentRecorder: Transport {
    let inner: any Transport
    /// Per segmented send: how many datagrams, and the segment size.
    var runs: [[Int]] = []

    init(_ inner: any Transport) { self.inner = inner }

    var headroom: Int { inner.headroom }
    var nextDeadline: Instant? { inner.nextDeadline }
    var localPort: UInt16? { inner.localPort }
    func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        try inner.register(with: poller, tokenBase: tokenBase)
    }
    func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch { try inner.receive(event, now: now) }
    func finishBatch(_ verdict: BatchVerdict) { inner.finishBatch(verdict) }
    func nextEvent() -> TransportEvent? { inner.nextEvent() }
    var supportsSegmentedSend: Bool { true }
    func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        for i in 0..<buffers.count { runs.append([(buffers[i].count + segmentSizes[i] - 1) / segmentSizes[i], segmentSizes[i]]) }
        try sendSegmentedAsSingles(buffers, segmentSizes: segmentSizes, to: destinations)
    }
    func send(_ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>) throws(IOError) {
        try inner.send(buffers, to: destinations)
    }
    func tick(now: Instant) throws(IOError) { try inner.tick(now: now) }
    var counters: TransportCounters { inner.counters }
}

extension DaemonPair {
    /// A tap pair with device offloads (link header 14) whose client records its segmented sends.
    fileprivate static func tapOffload(packetThreads: Int = 1) throws -> DaemonPair {
        try udp(
            seed: 3, mode: .tap, offloads: DataPlaneOffloads(deviceVirtioHeader: true, linkHeaderLength: 14),
            wrapClientTransport: { SegmentRecorder($0) }, packetThreads: packetThreads)
    }

    /// The client's transport of ``tapOffload()``.
    fileprivate var clientTransport: SegmentRecorder { client.transport as! SegmentRecorder }
}

@Suite("tap offloads through the data plane")
struct TapOffloadDataPlaneTests {
    @Test("a non-IP frame crosses alone; a TSO frame is split, sealed, and coalesced back into the same frame (1 and 3 packet threads)",
          arguments: [1, 3])
    func tcpSuperFrameRoundTrip(packetThreads: Int) throws {
        let pair = try DaemonPair.tapOffload(packetThreads: packetThreads)
        let plain = tapMACs + [0x88, 0xB5] + (0..<46).map { UInt8($0) }
        pair.client.device.inject(virtioBytes(VirtioNetHeader()) + plain)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [virtioBytes(VirtioNetHeader()) + plain])

        // 20,000 bytes at 1,000 a segment: 20 frames of 14 + 1,040 bytes, sealed unpadded (tap) into
        // one contiguous run of 16 + 1,054 + 16-byte datagrams.
        let (header, frame) = tapSuperFrame(tcp: true, payload: 20_000, gsoSize: 1000)
        pair.client.device.inject(virtioBytes(header) + frame)
        try pump([pair.client, pair.server])
        let written = pair.server.device.takeWritten()
        #expect(written.count == 1)
        #expect(written.first == virtioBytes(header) + frame)
        #expect(pair.clientTransport.runs == [[20, 1086]])

        let server = try #require(try pair.server.snapshot())
        let client = try #require(try pair.client.snapshot())
        #expect(server.drops.isEmpty && server.peers[0].drops.isEmpty)
        #expect(client.drops.isEmpty && client.peers[0].drops.isEmpty)
    }

    @Test("a USO frame becomes one Ethernet frame per datagram, each with a valid UDP checksum")
    func udpSuperFrame() throws {
        let pair = try DaemonPair.tapOffload()
        let (header, frame) = tapSuperFrame(tcp: false, payload: 5000, gsoSize: 1392)
        pair.client.device.inject(virtioBytes(header) + frame)
        try pump([pair.client, pair.server])
        let written = pair.server.device.takeWritten()
        #expect(written.map(\.count) == [1392, 1392, 1392, 824].map { 10 + 14 + 28 + $0 })
        // The first datagrams waited for the handshake (staged), so they went one by one; the
        // next super-frame goes as one segmented run.
        pair.client.device.inject(virtioBytes(header) + frame)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == written)
        #expect(pair.clientTransport.runs == [[4, 16 + 1434 + 16]])
        for write in written {
            #expect(write.prefix(10).allSatisfy { $0 == 0 }, "written alone, behind a zero header")
            let datagram = Array(write.dropFirst(10))
            #expect(Array(datagram.prefix(14)) == Array(frame.prefix(14)))
            let ip = Array(datagram.dropFirst(14))
            let valid = ip.withUnsafeBytes { bytes -> Bool in
                let pseudo = InternetChecksum.pseudoHeaderSum(
                    addresses: bytes.baseAddress! + 12, addressSize: 4, protocol: 17, length: ip.count - 20)
                return InternetChecksum.fold(
                    InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: bytes[20...]), initial: pseudo)) == 0xFFFF
            }
            #expect(valid, "UDP checksum of a \(ip.count)-byte datagram")
        }
        let server = try #require(try pair.server.snapshot())
        #expect(server.drops.isEmpty && server.peers[0].drops.isEmpty)

        // Datagrams of 1,400 bytes make 14 + 1,428-byte frames, over MTU + 14: counted as too big.
        let (bigHeader, bigFrame) = tapSuperFrame(tcp: false, payload: 5000, gsoSize: 1400)
        pair.client.device.inject(virtioBytes(bigHeader) + bigFrame)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten().isEmpty)
        let client = try #require(try pair.client.snapshot())
        #expect(client.drops == [.packetTooBig: 1])
    }
}
