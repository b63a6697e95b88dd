// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Synchronization
import Testing
import VPNBasics
import VPNLinux

/// A virtio-net header as the tun device reads and writes it (little-endian fields).
struct TestVirtioHeader: Equatable, CustomStringConvertible {
    static let needsChecksum: UInt8 = 1
    static let gsoNone: UInt8 = 0
    static let gsoTCPv4: UInt8 = 1
    static let gsoUDPL4: UInt8 = 5

    var flags: UInt8 = 0
    var gsoType: UInt8 = 0
    var headerLength: UInt16 = 0
    var gsoSize: UInt16 = 0
    var checksumStart: UInt16 = 0
    var checksumOffset: UInt16 = 0

    init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
         checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.gsoSize = gsoSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    init(_ b: [UInt8]) {
        func le(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
        self.init(flags: b[0], gsoType: b[1], headerLength: le(2), gsoSize: le(4), checksumStart: le(6),
                  checksumOffset: le(8))
    }

    var bytes: [UInt8] {
        func le(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        return [flags, gsoType] + le(headerLength) + le(gsoSize) + le(checksumStart) + le(checksumOffset)
    }

    var description: String {
        "flags=\(flags) gso_type=\(gsoType) hdr_len=\(headerLength) gso_size=\(gsoSize) "
            + "csum_start=\(checksumStart) csum_offset=\(checksumOffset)"
    }
}

/// The one's-complement sum of big-endian 16-bit words, folded to 16 bits (not inverted).
private func foldedSum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = 0
    while i + 1 < bytes.count {
        sum += UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
        i += 2
    }
    if i < bytes.count { sum += UInt32(bytes[i]) << 8 }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}

/// An IPv4/UDP packet with a valid IP header checksum. `partialChecksum` puts the folded
/// pseudo-header sum into the UDP checksum (virtio NEEDS_CSUM); else the UDP checksum is 0 (none).
private func ipv4UDPPacket(from source: [UInt8], port sourcePort: UInt16, to destination: [UInt8], port: UInt16,
                           payload: [UInt8], partialChecksum: Bool = false) -> [UInt8] {
    let total = 20 + 8 + payload.count
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0x12, 0x34, 0x40, 0, 64, 17, 0, 0]
    p += source + destination
    let ipChecksum = ~foldedSum(p)
    p[10] = UInt8(ipChecksum >> 8)
    p[11] = UInt8(ipChecksum & 0xFF)
    let udpLength = UInt16(8 + payload.count)
    var check: UInt16 = 0
    if partialChecksum {
        check = foldedSum(source + destination + [0, 17, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF)])
    }
    p += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF),
          UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), UInt8(check >> 8), UInt8(check & 0xFF)]
    return p + payload
}

/// Reads frames from a tun and hands out those holding IPv4 UDP packets (or fragments) to one
/// destination, in order; others, such as IPv6 router solicitations, are skipped.
private final class FrameReader {
    let tun: TunDevice
    let destination: [UInt8]
    let proto: UInt8
    private var pending: [(TestVirtioHeader, [UInt8])] = []
    private let buffers = TestBuffers(count: 8, slotSize: offloadSlotSize)

    init(_ tun: TunDevice, to destination: [UInt8], proto: UInt8 = 17) {
        self.tun = tun
        self.destination = destination
        self.proto = proto
    }

    /// The next matching frame's header and packet; fails after 5 s.
    func next(_ checks: ThreadChecks) throws -> (TestVirtioHeader, [UInt8]) {
        let deadline = ContinuousClock.now + .seconds(5)
        let headerLength = tun.virtioHeaderLength
        while pending.isEmpty && ContinuousClock.now < deadline {
            guard try waitReadable(tun.pollHandle, timeout: .seconds(1)) else { continue }
            buffers.reset()
            let n = try tun.read(into: buffers.buffers)
            for i in 0..<n {
                let frame = buffers.buffers[i].byteArray
                guard frame.count >= headerLength + 20 else { continue }
                let packet = Array(frame[headerLength...])
                if packet[0] >> 4 == 4, packet[9] == proto, Array(packet[16..<20]) == destination {
                    let header = headerLength > 0 ? TestVirtioHeader(Array(frame[0..<headerLength])) : TestVirtioHeader()
                    pending.append((header, packet))
                }
            }
        }
        guard !pending.isEmpty else {
            checks.fail("no IPv4 packet of protocol \(proto) to \(destination) came out of \(tun.name)")
            throw CancellationError()
        }
        return pending.removeFirst()
    }

    /// The next `count` UDP payloads, reassembled from IPv4 fragments where the kernel fragmented.
    func datagrams(_ count: Int, _ checks: ThreadChecks) throws -> [[UInt8]] {
        var result: [[UInt8]] = []
        var partial: [UInt8] = []
        while result.count < count {
            let (_, packet) = try next(checks)
            let moreFragments = packet[6] & 0x20 != 0
            partial += packet[20...]
            if !moreFragments {
                result.append(Array(partial[8...]))
                partial = []
            }
        }
        return result
    }
}

/// Writes `frame` to `tun` in one write.
private func writeFrame(_ frame: [UInt8], to tun: TunDevice) throws -> Bool {
    let buffers = TestBuffers(count: 1, slotSize: offloadSlotSize)
    frame.withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
    return try tun.write(buffers.buffers[0])
}

/// Tun/tap offloads (virtio-net header, TSO/USO) and UDP GSO through a tun, each test in a
/// network namespace of its own.
///
/// How super-packets are produced reliably: a UDP socket in the namespace sends with
/// `UDP_SEGMENT` to an address routed into the tun; with USO on, the kernel hands the tun one
/// `GSO_UDP_L4` super-packet instead of the datagrams (no TCP peer needed). The write direction
/// uses a crafted `GSO_UDP_L4` frame that the kernel segments for a local socket.
@Suite(.enabled(if: Privilege.shouldRun, Privilege.reason))
struct OffloadTunTests {
    init() throws {
        try #require(Privilege.available, "root and /dev/net/tun are required under CI=true")
    }

    @Test func offloadsAreNegotiatedAndReported() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let report = try await ns.run { (checks: ThreadChecks) throws -> String in
            let full = try TunDevice(name: "vpnd-of0", mode: .tun, offloads: .all)
            checks.expect(full.activeOffloads == .all, "\(full.offloadSummary)")
            checks.expect(full.virtioHeaderLength == 10)
            checks.expect(full.maximumFrameLength == 10 + 65535)
            checks.expect(full.offloadFallbackReason.isEmpty, full.offloadFallbackReason)
            checks.expect(full.offloadSummary == "tun offloads: csum tso4 tso6 uso4 uso6", full.offloadSummary)

            let plain = try TunDevice(name: "vpnd-of1", mode: .tun)
            checks.expect(plain.activeOffloads == [])
            checks.expect(plain.virtioHeaderLength == 0)
            checks.expect(plain.offloadSummary == "tun offloads: none", plain.offloadSummary)

            // Segmentation implies checksum; a lone USO flag is dropped (the kernel wants both).
            let tso = try TunDevice(name: "vpnd-of2", mode: .tun, offloads: [.tso4])
            checks.expect(tso.activeOffloads == [.csum, .tso4], "\(tso.activeOffloads)")
            let loneUSO = try TunDevice(name: "vpnd-of3", mode: .tun, offloads: [.uso4])
            checks.expect(loneUSO.activeOffloads == [.csum], "\(loneUSO.activeOffloads)")
            checks.expect(loneUSO.virtioHeaderLength == 10)

            let tap = try TunDevice(name: "vpnd-of4", mode: .tap, offloads: LinuxOffloadOptions.enabled.tunOffloads)
            checks.expect(tap.activeOffloads == .all, "\(tap.offloadSummary)")
            checks.expect(tap.virtioHeaderLength == 10)
            checks.expect(tap.maximumFrameLength == 10 + 65535 + 18)
            checks.expect(tap.offloadSummary == "tap offloads: csum tso4 tso6 uso4 uso6", tap.offloadSummary)
            return "\(full.offloadSummary) | \(tap.offloadSummary)"
        }
        #expect(report == "tun offloads: csum tso4 tso6 uso4 uso6 | tap offloads: csum tso4 tso6 uso4 uso6")
        #expect(LinuxOffloadOptions.disabled.tunOffloads == [])
        #expect(LinuxOffloadOptions.enabled.description == "tun-vnet-hdr gso gro")
        #expect(TunOffloads.all.description == "csum tso4 tso6 uso4 uso6")
        #expect(TunOffloads().description == "none")
    }

    @Test func framesCarryVirtioHeadersBothWays() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let name = "vpnd-of5"
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            let tun = try TunDevice(name: name, mode: .tun, offloads: .all)
            try checks.require(tun.virtioHeaderLength == 10)
            try netlink.addAddress(NetlinkPrefix("10.79.0.1/24")!, on: name)
            try netlink.setLink(name, up: true)
            let here: [UInt8] = [10, 79, 0, 1]
            let there: [UInt8] = [10, 79, 0, 2]

            // (b) A small datagram routed into the tun: a 10-byte header with gso_type NONE, then
            // the IP packet; its UDP checksum may be left to us (NEEDS_CSUM at the UDP field).
            let plainSender = try UDPSocket(bindingTo: Endpoint(ipv4: 10, 79, 0, 1, port: 0))
            let small = TestBuffers(count: 1)
            [UInt8]([1, 2, 3, 4]).withUnsafeBytes { small.buffers[0].append(contentsOf: $0) }
            let sent = try [Endpoint(ipv4: 10, 79, 0, 2, port: 9)].withUnsafeBufferPointer {
                try plainSender.send(UnsafeBufferPointer(small.buffers), to: $0)
            }
            checks.expect(sent == 1)
            let reader = FrameReader(tun, to: there)
            let (smallHeader, smallPacket) = try reader.next(checks)
            checks.expect(smallHeader.gsoType == TestVirtioHeader.gsoNone, "\(smallHeader)")
            checks.expect(smallHeader.gsoSize == 0, "\(smallHeader)")
            if smallHeader.flags & TestVirtioHeader.needsChecksum != 0 {
                checks.expect(smallHeader.checksumStart == 20 && smallHeader.checksumOffset == 6, "\(smallHeader)")
            }
            checks.expect(smallPacket.count == 32)
            checks.expect(Array(smallPacket[28...]) == [1, 2, 3, 4])

            // (c) A UDP_SEGMENT send of 8 x 1000 bytes comes out as one GSO_UDP_L4 super-packet.
            let gsoSender = try UDPSocket(
                bindingTo: Endpoint(ipv4: 10, 79, 0, 1, port: 0), offloads: LinuxOffloadOptions(udpGSO: true))
            let segments = testSegments(count: 8, size: 1000)
            let big = TestBuffers(count: 1, slotSize: offloadSlotSize)
            Array(segments.joined()).withUnsafeBytes { big.buffers[0].append(contentsOf: $0) }
            try checks.expect(
                try gsoSender.sendSegmented(big.buffers[0], segmentSize: 1000, to: Endpoint(ipv4: 10, 79, 0, 2, port: 9)))
            checks.expect(gsoSender.udpGSOActive, gsoSender.offloadSummary)
            let (bigHeader, bigPacket) = try reader.next(checks)
            checks.expect(bigHeader.gsoType == TestVirtioHeader.gsoUDPL4, "\(bigHeader)")
            checks.expect(bigHeader.gsoSize == 1000, "\(bigHeader)")
            checks.expect(bigHeader.flags & TestVirtioHeader.needsChecksum != 0, "\(bigHeader)")
            checks.expect(bigHeader.checksumStart == 20 && bigHeader.checksumOffset == 6, "\(bigHeader)")
            checks.expect(bigPacket.count == 28 + 8000, "super-packet of \(bigPacket.count) bytes")
            checks.expect(Array(bigPacket[28...]) == Array(segments.joined()))

            // (d) A frame with an all-zero header and a checksummed packet reaches a local socket.
            let receiver = try UDPSocket(bindingTo: Endpoint(ipv4: 10, 79, 0, 1, port: 0))
            let port = receiver.localEndpoint.port
            let packet = ipv4UDPPacket(from: there, port: 4000, to: here, port: port, payload: Array("via vnet".utf8))
            try checks.expect(try writeFrame(TestVirtioHeader().bytes + packet, to: tun))
            try checks.require(try waitReadable(receiver.pollHandle), "the GSO_NONE frame did not reach the socket")
            try checks.expect(try receivePlain(receiver, count: 1) == [Array("via vnet".utf8)])

            // (e) A GSO_UDP_L4 super-packet written to the tun is cut by the kernel into its
            // datagrams for a plain socket, and handed whole to a GRO socket.
            let written = testSegments(count: 6, size: 1000, seed: 9) + [Array(repeating: 0x5A, count: 500)]
            let superPacket = ipv4UDPPacket(
                from: there, port: 4001, to: here, port: port, payload: Array(written.joined()), partialChecksum: true)
            let gsoHeader = TestVirtioHeader(
                flags: TestVirtioHeader.needsChecksum, gsoType: TestVirtioHeader.gsoUDPL4, headerLength: 28,
                gsoSize: 1000, checksumStart: 20, checksumOffset: 6)
            try checks.expect(try writeFrame(gsoHeader.bytes + superPacket, to: tun), "GSO frame refused")
            try checks.expect(try receivePlain(receiver, count: written.count, slotSize: 2048) == written)

            let groReceiver = try UDPSocket(
                bindingTo: Endpoint(ipv4: 10, 79, 0, 1, port: 0), offloads: LinuxOffloadOptions(udpGRO: true))
            let groPacket = ipv4UDPPacket(
                from: there, port: 4002, to: here, port: groReceiver.localEndpoint.port,
                payload: Array(written.joined()), partialChecksum: true)
            try checks.expect(try writeFrame(gsoHeader.bytes + groPacket, to: tun), "GSO frame refused")
            let coalesced = try receiveCoalesced(groReceiver, expectedBytes: 6500)
            checks.expect(coalesced.count == 1, "\(coalesced.count) buffers")
            checks.expect(coalesced.first?.1 == 1000)
            checks.expect(coalesced.flatMap { split($0.0, segmentSize: $0.1) } == written)
        }
    }

    /// A segment larger than the route's MTU makes the kernel refuse the GSO send (EMSGSIZE on
    /// 6.x); the message then goes out as single datagrams, which IP fragments.
    ///
    /// The other fallback, EIO for a device without checksum offload, does not occur on this
    /// kernel: it segments in software instead (checked here too, with a plain tun).
    @Test func gsoFallsBackToSingleDatagramsWhenTheKernelRefusesTheSend() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let name = "vpnd-of6"
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            let tun = try TunDevice(name: name, mode: .tun)  // MTU 1500, no offloads
            try netlink.addAddress(NetlinkPrefix("10.79.1.1/24")!, on: name)
            try netlink.setLink(name, up: true)
            let reader = FrameReader(tun, to: [10, 79, 1, 2])
            // Without path MTU discovery (no DF), so that IP may fragment the single datagrams.
            let sender = try UDPSocket(
                bindingTo: Endpoint(ipv4: 10, 79, 1, 1, port: 0), offloads: LinuxOffloadOptions(udpGSO: true),
                pathMTUDiscovery: false)
            checks.expect(sender.udpGSOActive)
            let destination = Endpoint(ipv4: 10, 79, 1, 2, port: 9)

            // 1000-byte segments through a device without checksum offload: segmented in software.
            let small = testSegments(count: 4, size: 1000, seed: 5)
            let first = TestBuffers(count: 1, slotSize: offloadSlotSize)
            Array(small.joined()).withUnsafeBytes { first.buffers[0].append(contentsOf: $0) }
            try checks.expect(try sender.sendSegmented(first.buffers[0], segmentSize: 1000, to: destination))
            checks.expect(sender.sendCounters.gsoFallbacks == 0)
            try checks.expect(try reader.datagrams(4, checks) == small)

            // 1600-byte segments exceed the MTU: refused whole, sent as single (fragmented) datagrams.
            let large = testSegments(count: 3, size: 1600, seed: 6) + [Array(repeating: 0x77, count: 300)]
            let second = TestBuffers(count: 1, slotSize: offloadSlotSize)
            Array(large.joined()).withUnsafeBytes { second.buffers[0].append(contentsOf: $0) }
            try checks.expect(try sender.sendSegmented(second.buffers[0], segmentSize: 1600, to: destination))
            checks.expect(sender.sendCounters.gsoFallbacks == 1, "\(sender.sendCounters.gsoFallbacks) fallbacks")
            checks.expect(sender.udpGSOActive, "an MTU refusal must not turn GSO off")
            checks.expect(sender.sendCounters.socketRefused == 0)
            try checks.expect(try reader.datagrams(4, checks) == large)
            checks.expect(sender.offloadSummary == "udp offloads: gso", sender.offloadSummary)
        }
    }

    /// TSO: a local TCP sender whose peer sits behind the tun hands the tun TCPV4 super-packets.
    ///
    /// The peer is played by hand: a SYN with MSS 1400 written into the tun, the SYN-ACK read back,
    /// an ACK written; then 30,000 bytes sent on the accepted socket leave as frames of gso_type
    /// TCPV4 with gso_size 1400 (the initial window allows ten segments at once).
    @Test func tcpSenderBehindTheTunProducesTSOSuperPackets() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let name = "vpnd-of7"
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            let tun = try TunDevice(name: name, mode: .tun, offloads: .all)
            try netlink.addAddress(NetlinkPrefix("10.79.2.1/24")!, on: name)
            try netlink.setLink(name, up: true)
            let here: [UInt8] = [10, 79, 2, 1]
            let there: [UInt8] = [10, 79, 2, 2]

            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(5001).bigEndian
            address.sin_addr.s_addr = UInt32(0x0A4F_0201).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            try checks.require(bound == 0 && listen(listener, 4) == 0, "listen failed: errno \(errno)")

            let reader = FrameReader(tun, to: there, proto: 6)
            let syn = ipv4TCP(from: there, port: 40000, to: here, port: 5001, seq: 1000, ack: 0, flags: 0x02,
                              options: [2, 4, 0x05, 0x78])
            try checks.expect(try writeFrame(TestVirtioHeader().bytes + syn, to: tun), "SYN refused")
            let (_, synAck) = try reader.next(checks)
            try checks.require(synAck[33] & 0x12 == 0x12, "expected a SYN-ACK, flags \(synAck[33])")
            let serverSeq = synAck[24..<28].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let ack = ipv4TCP(from: there, port: 40000, to: here, port: 5001, seq: 1001, ack: serverSeq &+ 1,
                              flags: 0x10, options: [])
            try checks.expect(try writeFrame(TestVirtioHeader().bytes + ack, to: tun), "ACK refused")
            try checks.require(try waitReadable(PollHandle(rawValue: listener)), "the handshake did not complete")
            let connection = accept(listener, nil, nil)
            try checks.require(connection >= 0, "accept failed")
            defer { close(connection) }

            let payload = (0..<30_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            let written = payload.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            checks.expect(written == payload.count, "sent \(written)")
            var received: [UInt8] = []
            var superPackets = 0
            while received.count < 14_000 {
                let (header, packet) = try reader.next(checks)
                let dataStart = 20 + Int(packet[32] >> 4) * 4
                if packet.count > dataStart {
                    if header.gsoType == TestVirtioHeader.gsoTCPv4 {
                        superPackets += 1
                        checks.expect(header.gsoSize == 1400, "\(header)")
                        checks.expect(header.flags & TestVirtioHeader.needsChecksum != 0, "\(header)")
                        checks.expect(header.checksumStart == 20 && header.checksumOffset == 16, "\(header)")
                        checks.expect(packet.count > 1500, "a super-packet of \(packet.count) bytes")
                    }
                    received += packet[dataStart...]
                }
            }
            checks.expect(superPackets > 0, "no TCPV4 super-packet among the first \(received.count) bytes")
            checks.expect(Array(payload.prefix(received.count)) == received)
        }
    }
}

/// An IPv4/TCP segment without payload, with valid IP and TCP checksums.
private func ipv4TCP(from source: [UInt8], port sourcePort: UInt16, to destination: [UInt8], port: UInt16,
                     seq: UInt32, ack: UInt32, flags: UInt8, options: [UInt8]) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    let tcpLength = 20 + options.count
    let total = 20 + tcpLength
    var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 0, 0x40, 0, 64, 6, 0, 0]
    ip += source + destination
    let ipChecksum = ~foldedSum(ip)
    ip[10] = UInt8(ipChecksum >> 8)
    ip[11] = UInt8(ipChecksum & 0xFF)
    var tcp: [UInt8] = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF)]
    tcp += be32(seq) + be32(ack) + [UInt8(tcpLength / 4) << 4, flags, 0xFF, 0xFF, 0, 0, 0, 0] + options
    let pseudo = source + destination + [0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)]
    let tcpChecksum = ~foldedSum(pseudo + tcp)
    tcp[16] = UInt8(tcpChecksum >> 8)
    tcp[17] = UInt8(tcpChecksum & 0xFF)
    return ip + tcp
}
