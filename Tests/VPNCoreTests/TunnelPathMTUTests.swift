// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Path MTU between two simulated peers: probes and echoes through a path that silently drops
/// datagrams above a size (a black hole: no ICMP, no fragments).
@Suite("Tunnel: path MTU discovery with probes")
struct TunnelPathMTUTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB

    /// A simulator whose network drops datagrams longer than `largestDatagram` bytes of UDP payload.
    func blackHole(largestDatagram: Int, discovery: Bool = true) -> TwoPeerSimulator {
        var options = TwoPeerOptions()
        options.pathMTUDiscovery = discovery
        let sim = TwoPeerSimulator(options)
        sim.network.filter = { $0.bytes.count <= largestDatagram }
        return sim
    }

    @Test("both ends find a 1,220-byte inner path (1,252-byte datagrams) within 2 s of the handshake")
    func findsTheBlackHole() {
        let sim = blackHole(largestDatagram: 1252)
        sim.connect(within: .seconds(2))
        #expect(sim.a.peerStatus(sim.now).pathMTU == 1220)
        #expect(sim.b.peerStatus(sim.now).pathMTU == 1220)
        #expect(sim.a.peerStatus(sim.now).echoesProbes == true && sim.b.peerStatus(sim.now).echoesProbes == true)
        // Probes are type 5, echoes small; none counted as data.
        let probes = sim.network.log.filter { $0.messageType == .pathProbe }
        #expect(!probes.isEmpty && probes.allSatisfy { $0.bytes.count <= 1420 + 32 })
        #expect(sim.a.peerStatus(sim.now).receivedBytes == 0 && sim.b.peerStatus(sim.now).receivedBytes == 0)
        // Data of the found size goes through; one byte more is refused by the sender.
        let fits = sim.dataPacket(from: .b, payload: [UInt8](repeating: 7, count: 1220 - 20))
        guard case .send = sim.send(.b, fits) else {
            Issue.record("a packet of the path MTU was not sent")
            return
        }
        sim.run(for: .milliseconds(10))
        #expect(sim.a.deliveredPayloads.count == 1)
        let tooBig = sim.dataPacket(from: .b, payload: [UInt8](repeating: 7, count: 1221 - 20))
        let result = sim.send(.b, tooBig)
        #expect(result.isReply || result.isDrop(.packetTooBig), "\(result)")
    }

    @Test("an open path: the MTU stays 1420 and probing stops")
    func openPath() {
        let sim = blackHole(largestDatagram: 65535)
        sim.connect(within: .seconds(2))
        #expect(sim.a.peerStatus(sim.now).pathMTU == 1420 && sim.b.peerStatus(sim.now).pathMTU == 1420)
        let before = sim.network.log.filter { $0.messageType == .pathProbe }.count
        sim.run(for: .seconds(60))
        #expect(sim.network.log.filter { $0.messageType == .pathProbe }.count == before, "probing goes on")
    }

    @Test("discovery off: no probe is ever sent")
    func off() {
        let sim = blackHole(largestDatagram: 65535, discovery: false)
        sim.connect(within: .seconds(5))
        #expect(sim.network.log.allSatisfy { $0.messageType != .pathProbe })
        #expect(sim.a.peerStatus(sim.now).echoesProbes == nil)
    }

    @Test("a peer that drops probes unread (WireGuard) is marked; large packets unanswered then lower the MTU to 1200")
    func silentPeerFallback() {
        let sim = blackHole(largestDatagram: 1252)
        // B stands for a WireGuard peer: every probe to it is dropped unread; A keeps probing.
        sim.network.filter = { d in
            if d.messageType == .pathProbe && d.destination == TwoPeerSimulator.endpointB { return false }
            return d.bytes.count <= 1252
        }
        sim.connect(within: .seconds(5))
        #expect(sim.a.peerStatus(sim.now).echoesProbes == false)
        #expect(sim.a.peerStatus(sim.now).pathMTU == 1420)
        // A sends large packets into the black hole; nothing comes back for 15 s; the new
        // handshake (small) completes: A assumes the black hole.
        for i in 0..<20 {
            sim.send(.a, sim.dataPacket(from: .a, payload: [UInt8](repeating: UInt8(i), count: 1400 - 20)))
        }
        sim.run(for: .seconds(20))
        #expect(sim.a.peerStatus(sim.now).pathMTU == PathMTUProber.conservativeMTU)
        #expect(sim.a.events.contains { if case .blackHoleAssumed = $0 { true } else { false } })
    }

    @Test("an ICMP or EMSGSIZE report lowers the peer's MTU at once; another address changes nothing")
    func reports() {
        let sim = blackHole(largestDatagram: 65535)
        sim.connect(within: .seconds(2))
        sim.a.tunnel.pathMTUReported(destination: Endpoint(ipv4: 203, 0, 113, 1, port: 0), outerMTU: 1280, now: sim.now)
        #expect(sim.a.peerStatus(sim.now).pathMTU == 1420)
        var local = b
        local.port = 0
        sim.a.tunnel.pathMTUReported(destination: local, outerMTU: 1280, now: sim.now)
        #expect(sim.a.peerStatus(sim.now).pathMTU == 1280 - 20 - 8 - 32)
    }

    @Test("probes are authenticated: a forged or re-typed probe is dropped; a replayed one is not echoed twice")
    func probesAreAuthenticated() throws {
        let sim = blackHole(largestDatagram: 65535)
        // Probes from B above 1,300 bytes are held back (never reach A): their counters stay fresh.
        var held: [[UInt8]] = []
        sim.network.filter = { d in
            if d.messageType == .pathProbe && d.source == TwoPeerSimulator.endpointB && d.bytes.count > 1300 {
                held.append(d.bytes)
                return false
            }
            return true
        }
        sim.connect(within: .seconds(2))
        sim.network.filter = nil
        #expect(held.count >= 2)
        let delivered = try #require(sim.network.log.last { $0.messageType == .pathProbe && $0.source == b && (100...1300).contains($0.bytes.count) })
        let echoes = sim.network.log.filter { $0.messageType == .pathProbe && $0.source == a }.count
        #expect(sim.receive(.a, delivered.bytes, from: b).isDrop(.replayed))
        var retyped = held[0]
        retyped[0] = 4  // the same bytes as transport data: for probes the header is authenticated
        #expect(sim.receive(.a, retyped, from: b).isDrop(.authenticationFailed))
        var flipped = held[1]
        flipped[40] ^= 1
        #expect(sim.receive(.a, flipped, from: b).isDrop(.authenticationFailed))
        #expect(sim.network.log.filter { $0.messageType == .pathProbe && $0.source == a }.count == echoes)
        #expect(sim.a.deliveredPayloads.isEmpty)
        // The untouched held probe still authenticates (late, but within the window) and is echoed.
        #expect(sim.receive(.a, held[2 < held.count ? 2 : 0], from: b).isConsumed)
    }
}

/// MSS clamping and ICMP errors through the tunnel, with path MTU discovery on.
@Suite("Tunnel: MSS clamp and ICMP too-big")
struct TunnelMSSAndICMPTests {
    /// A TCP SYN from `side` to the other side's inner address, MSS 1460 (Linux's options).
    func syn(_ sim: TwoPeerSimulator, from side: SimulatedSide, flags: UInt8 = 0x02) -> [UInt8] {
        var p = mssSegment(v6: false, options: mssLinuxOptions, flags: flags)
        let from = sim.peer(side).address
        let to = sim.peer(side.other).address
        p.replaceSubrange(12..<16, with: from.bytes.suffix(4))
        p.replaceSubrange(16..<20, with: to.bytes.suffix(4))
        offloadPutBE16(&p, 10, 0)
        offloadPutBE16(&p, 10, Int(offloadReferenceChecksum(Array(p[0..<20]))))
        mssFixChecksum(&p)
        guard sim.options.mode == .tap else { return p }
        return TestPackets.ethernet(destination: sim.peer(side.other).mac, source: sim.peer(side).mac, payload: p)
    }

    @Test("tap mode: SYNs inside Ethernet frames are clamped too")
    func clampInTap() {
        var options = TwoPeerOptions()
        options.mode = .tap
        options.pathMTUDiscovery = true
        let sim = TwoPeerSimulator(options)
        sim.network.filter = { $0.bytes.count <= 1252 + 14 }
        sim.connect(within: .seconds(2))
        #expect(sim.b.peerStatus(sim.now).pathMTU == 1220)
        sim.send(.b, syn(sim, from: .b))
        sim.run(for: .milliseconds(10))
        guard let got = sim.a.delivered.last else {
            Issue.record("nothing delivered")
            return
        }
        let ip = Array(got[14...])
        #expect(offloadBE16(ip, 20 + 22) == 1180)
        #expect(offloadL4ChecksumValid(ip))
    }

    @Test("SYN and SYN-ACK in both directions carry at most the path MTU less 40, checksums intact",
          arguments: [MSSClampSetting.auto, .fixed(1000), .off])
    func clampBothWays(setting: MSSClampSetting) {
        var options = TwoPeerOptions()
        options.pathMTUDiscovery = true
        options.mssClamp = setting
        let sim = TwoPeerSimulator(options)
        sim.network.filter = { $0.bytes.count <= 1252 }
        sim.connect(within: .seconds(2))
        #expect(sim.b.peerStatus(sim.now).pathMTU == 1220)
        let expected: Int
        switch setting {
        case .auto: expected = 1180
        case .fixed(let n): expected = n
        case .off: expected = 1460
        }
        sim.send(.b, syn(sim, from: .b))
        sim.send(.a, syn(sim, from: .a, flags: 0x12))
        sim.run(for: .milliseconds(10))
        for side in [SimulatedSide.a, .b] {
            guard let got = sim.peer(side).delivered.last else {
                Issue.record("\(side) got nothing")
                continue
            }
            #expect(offloadBE16(got, 20 + 22) == expected, "MSS at \(side)")
            #expect(offloadL4ChecksumValid(got))
        }
    }

    @Test("a packet with DF over the path MTU gets ICMP fragmentation-needed back, naming the MTU")
    func tooBigGetsICMP() throws {
        var options = TwoPeerOptions()
        options.pathMTUDiscovery = true
        let sim = TwoPeerSimulator(options)
        sim.network.filter = { $0.bytes.count <= 1252 }
        sim.connect(within: .seconds(2))
        var big = sim.dataPacket(from: .b, payload: [UInt8](repeating: 1, count: 1300))
        big[6] = 0x40  // DF
        var buffer = sim.supply.buffer(holding: big, slot: 0)
        guard case .reply = sim.b.tunnel.encapsulate(&buffer, now: sim.now) else {
            Issue.record("no ICMP reply for a 1320-byte packet with DF")
            return
        }
        let icmp = buffer.byteArray
        #expect(icmp[9] == 1 && icmp[20] == 3 && icmp[21] == 4)
        #expect(offloadBE16(icmp, 26) == 1220)
        #expect(Array(icmp[12..<16]) == Array(big[16..<20]) && Array(icmp[16..<20]) == Array(big[12..<16]))
        #expect(icmp.count <= 576)
        #expect(sim.b.peerStatus(sim.now).drops[.packetTooBig] == 1)
        // Rate limit: a second one within 10 ms is only dropped; later one is answered again.
        buffer = sim.supply.buffer(holding: big, slot: 0)
        #expect(sim.b.tunnel.encapsulate(&buffer, now: sim.now).isDrop(.packetTooBig))
        buffer = sim.supply.buffer(holding: big, slot: 0)
        #expect(sim.b.tunnel.encapsulate(&buffer, now: sim.now + .milliseconds(11)).isReply)
        // Without DF: dropped, no error.
        big[6] = 0
        buffer = sim.supply.buffer(holding: big, slot: 0)
        #expect(sim.b.tunnel.encapsulate(&buffer, now: sim.now + .milliseconds(30)).isDrop(.packetTooBig))
    }
}

extension EncapsulateResult {
    var isReply: Bool { if case .reply = self { true } else { false } }
}
