// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
import VPNCore
import VPNTesting

/// The data path allocates nothing per packet (DESIGN.md, Data path): once a session exists,
/// sealing, opening, splitting super-packets and coalescing segments make no heap allocation.
/// Counted on this thread only (malloc interposed in the test binary, or the sanitizer's hooks).
@Suite("Data path: no allocation in the steady state")
struct SteadyStateAllocationTests {
    /// Seals `packet` at `sender` and opens it at the other side, in one buffer; true when delivered.
    @inline(never)
    static func carry(_ packet: UnsafeRawBufferPointer, from sender: SimulatedSide, in sim: TwoPeerSimulator) -> Bool {
        sim.clock.advance(by: .microseconds(10))
        let from = sim.peer(sender)
        var buffer = sim.supply.buffer(0)
        buffer.append(contentsOf: packet)
        guard case .send = from.tunnel.encapsulate(&buffer, now: sim.now) else { return false }
        guard case .deliver = sim.peer(sender.other).tunnel.decapsulate(&buffer, from: from.endpoint, now: sim.now) else {
            return false
        }
        return buffer.count == packet.count
    }

    /// ``carry(_:from:in:)`` the way a multi-threaded data plane does it: the seal and the open
    /// left in the tunnels' crypto batches, run, then the send and the finish.
    @inline(never)
    static func carryDeferred(_ packet: UnsafeRawBufferPointer, from sender: SimulatedSide, in sim: TwoPeerSimulator) -> Bool {
        sim.clock.advance(by: .microseconds(10))
        let from = sim.peer(sender)
        let to = sim.peer(sender.other)
        var buffer = sim.supply.buffer(0)
        buffer.append(contentsOf: packet)
        guard case .send = from.tunnel.encapsulate(&buffer, now: sim.now, deferSeal: true) else { return false }
        from.tunnel.crypto.runAll()
        from.tunnel.crypto.reset()
        guard to.tunnel.beginDecapsulate(&buffer, from: from.endpoint, now: sim.now) == nil else { return false }
        to.tunnel.crypto.runAll()
        let result = to.tunnel.finishDecapsulate(job: 0, &buffer, from: from.endpoint, now: sim.now)
        to.tunnel.crypto.reset()
        return result == .deliver && buffer.count == packet.count
    }

    @Test("10,000 packets each way with the seals and opens deferred (Threads > 1): zero allocations")
    func deferredBothWays() {
        let sim = TwoPeerSimulator()
        sim.connect()
        let up = TestPackets.ipv4(from: sim.b.address, to: sim.a.address, payload: simPayload(1, count: 1000))
        let down = TestPackets.ipv4(from: sim.a.address, to: sim.b.address, payload: simPayload(2, count: 1300))
        up.withUnsafeBytes { upBytes in
            down.withUnsafeBytes { downBytes in
                for _ in 0..<100 {
                    #expect(Self.carryDeferred(upBytes, from: .b, in: sim))
                    #expect(Self.carryDeferred(downBytes, from: .a, in: sim))
                }
                sim.run(for: .milliseconds(10))
                var delivered = 0
                vpnd_allocations_begin()
                for _ in 0..<10_000 {
                    if Self.carryDeferred(upBytes, from: .b, in: sim) { delivered += 1 }
                    if Self.carryDeferred(downBytes, from: .a, in: sim) { delivered += 1 }
                }
                let allocations = vpnd_allocations_end()
                #expect(delivered == 20_000)
                #expect(allocations == 0)
            }
        }
    }

    @Test("the counter sees allocations (control: an Array per iteration is counted)")
    func counterCounts() {
        #expect(vpnd_allocations_countable() == 1)
        vpnd_allocations_begin()
        var total = 0
        for i in 0..<100 { total += makeArray(i).count }
        let allocations = vpnd_allocations_end()
        #expect(total == (0..<100).reduce(0) { $0 + $1 + 1 })
        #expect(allocations >= 100)
    }

    @inline(never)
    func makeArray(_ n: Int) -> [UInt8] { [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: n + 1) }

    @Test("10,000 packets each way through an established session (tun, tap, and tun with Transport = auto: the server's carrier-tagged roaming, the client's carrier choice): zero allocations",
          arguments: [(HandshakeIdentity.Mode.tun, false), (.tap, false), (.tun, true)])
    func sealOpenBothWays(mode: HandshakeIdentity.Mode, auto: Bool) {
        var options = TwoPeerOptions()
        options.mode = mode
        if auto {
            options.carriersAtA = .both
            options.carriersAtB = .agile
        }
        let sim = TwoPeerSimulator(options)
        sim.connect()
        let up = TestPackets.ipv4(from: sim.b.address, to: sim.a.address, payload: simPayload(1, count: 1000))
        let down = TestPackets.ipv4(from: sim.a.address, to: sim.b.address, payload: simPayload(2, count: 1300))
        up.withUnsafeBytes { upBytes in
            down.withUnsafeBytes { downBytes in
                // Warm-up: the responder confirms the session on the first data message.
                for _ in 0..<100 {
                    #expect(Self.carry(upBytes, from: .b, in: sim))
                    #expect(Self.carry(downBytes, from: .a, in: sim))
                }
                sim.run(for: .milliseconds(10))
                var delivered = 0
                vpnd_allocations_begin()
                for _ in 0..<10_000 {
                    if Self.carry(upBytes, from: .b, in: sim) { delivered += 1 }
                    if Self.carry(downBytes, from: .a, in: sim) { delivered += 1 }
                }
                let allocations = vpnd_allocations_end()
                #expect(delivered == 20_000)
                #expect(allocations == 0)
                // Each packet sent after one received re-arms the new-handshake timer with jitter:
                // that must not draw from the system's entropy (a getrandom call per packet).
                let drawsBefore = (sim.a.entropyDraws, sim.b.entropyDraws)
                for _ in 0..<1_000 {
                    _ = Self.carry(upBytes, from: .b, in: sim)
                    _ = Self.carry(downBytes, from: .a, in: sim)
                }
                #expect(sim.a.entropyDraws == drawsBefore.0)
                #expect(sim.b.entropyDraws == drawsBefore.1)
            }
        }
    }

    @Test("1,000 64 KiB TSO super-packets split into segments and coalesced back: zero allocations")
    func splitAndCoalesce() {
        let (superPacket, _) = offloadTCPSegments(payload: 60_000, gsoSize: 1380)
        let segments = OffloadBatch(count: 128)
        let rig = OffloadCoalesceRig()
        var produced = 0
        var written = 0
        superPacket.read.withUnsafeBytes { read in
            // Warm-up once, then count.
            for round in 0..<1_001 {
                if round == 1 { vpnd_allocations_begin() }
                segments.reset()
                guard case .segments(let count) = GSOSplitter.split(virtioPacket: read, into: segments.buffers) else { return }
                rig.supers.reset()
                let result = rig.coalescer.coalesce(
                    UnsafeMutableBufferPointer(rebasing: segments.buffers[0..<count]), superBuffers: rig.supers.buffers,
                    into: rig.results)
                if round > 0 {
                    produced += count
                    written += result.writeCount
                }
            }
        }
        let allocations = vpnd_allocations_end()
        #expect(produced == 1_000 * 44)
        #expect(written == 1_000)
        #expect(allocations == 0)
    }
}
