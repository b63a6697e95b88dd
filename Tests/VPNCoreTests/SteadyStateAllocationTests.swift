// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// The data path allocates nothing per packet (DESIGN.md, Data path): once a session exists,
/// sealing, opening, splitting super-packets and coalescing segments make no heap allocation.
/// Counted on this thread only (malloc interposed in the test binary, or the sanitizer's hooks).
@Suite("Data path: no allocation in the steady state")
struct SteadyStateAllocationTests {
    /// Two inline tunnels with a session, and buffers for packets.
    final class Pair {
        let client: Tunnel
        let server: Tunnel
        let slab = PacketSlab(slotSize: 2048, slotCount: 1)
        var now = Instant.zero + .seconds(1)

        let draws = DrawCounter()

        init(mode: HandshakeIdentity.Mode = .tun) {
            var keys = SeededEntropy(seed: 11)
            let serverKey = X25519.generatePrivateKey(using: &keys)
            let clientKey = X25519.generatePrivateKey(using: &keys)
            server = Tunnel(
                configuration: TunnelConfiguration(
                    mode: mode, privateKey: serverKey, mtu: 1420,
                    peers: [PeerConfiguration(publicKey: X25519.publicKey(for: clientKey), allowedIPs: [IPPrefix("10.8.0.2/32")!])]),
                entropy: SeededEntropy(seed: 12), timestamps: Stamps())
            client = Tunnel(
                configuration: TunnelConfiguration(
                    mode: mode, privateKey: clientKey, mtu: 1420,
                    peers: [
                        PeerConfiguration(
                            publicKey: X25519.publicKey(for: serverKey), allowedIPs: [IPPrefix("10.8.0.0/24")!],
                            endpoint: Endpoint(ipv4: 192, 0, 2, 1, port: 51820))
                    ]),
                entropy: CountingEntropy(inner: SeededEntropy(seed: 13), counter: draws), timestamps: Stamps())
            client.initiateHandshakes(now: now)
            exchange()
        }

        /// Delivers every queued frame to the other side until both outboxes are empty.
        func exchange() {
            for _ in 0..<8 {
                forward(from: client, to: server, source: Endpoint(ipv4: 192, 0, 2, 2, port: 40000))
                forward(from: server, to: client, source: Endpoint(ipv4: 192, 0, 2, 1, port: 51820))
            }
        }

        private func forward(from sender: Tunnel, to receiver: Tunnel, source: Endpoint) {
            var frames: [[UInt8]] = []
            while sender.outbox.dequeue({ frames.append(Array(UnsafeRawBufferPointer($0.buffer.bytes))) }) {}
            for frame in frames {
                var buffer = slab.buffer(0, headroom: 0)
                frame.withUnsafeBytes { buffer.append(contentsOf: $0) }
                _ = receiver.decapsulate(&buffer, from: source, now: now)
            }
        }

        /// Seals `packet` at `sender` and opens it at `receiver`, in one buffer; true when delivered.
        @inline(never)
        func carry(_ packet: UnsafeRawBufferPointer, from sender: Tunnel, to receiver: Tunnel, source: Endpoint) -> Bool {
            now = now + .microseconds(10)
            var buffer = slab.buffer(0, headroom: TransportData.tcpHeadroom)
            buffer.append(contentsOf: packet)
            guard case .send = sender.encapsulate(&buffer, now: now) else { return false }
            guard case .deliver = receiver.decapsulate(&buffer, from: source, now: now) else { return false }
            return buffer.count == packet.count
        }
    }

    /// Counts the bytes drawn from the cryptographic entropy source (getrandom in production).
    final class DrawCounter { var calls = 0 }
    struct CountingEntropy: EntropySource {
        var inner: SeededEntropy
        let counter: DrawCounter
        mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
            counter.calls += 1
            inner.fill(buffer)
        }
    }

    struct Stamps: TimestampSource {
        var seconds: Int64 = 1_700_000_000
        mutating func timestamp() -> TAI64N {
            seconds += 1
            return TAI64N(unixSeconds: seconds, nanoseconds: 0)
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

    @Test("10,000 packets each way through an established session (tun, tap): zero allocations",
          arguments: [HandshakeIdentity.Mode.tun, .tap])
    func sealOpenBothWays(mode: HandshakeIdentity.Mode) {
        let pair = Pair(mode: mode)
        let up = TestPackets.ipv4(from: IPAddress("10.8.0.2")!, to: IPAddress("10.8.0.1")!, payload: simPayload(1, count: 1000))
        let down = TestPackets.ipv4(from: IPAddress("10.8.0.1")!, to: IPAddress("10.8.0.2")!, payload: simPayload(2, count: 1300))
        let clientAt = Endpoint(ipv4: 192, 0, 2, 2, port: 40000)
        let serverAt = Endpoint(ipv4: 192, 0, 2, 1, port: 51820)
        up.withUnsafeBytes { upBytes in
            down.withUnsafeBytes { downBytes in
                // Warm-up: the responder confirms the session on the first data message.
                for _ in 0..<100 {
                    #expect(pair.carry(upBytes, from: pair.client, to: pair.server, source: clientAt))
                    #expect(pair.carry(downBytes, from: pair.server, to: pair.client, source: serverAt))
                }
                pair.exchange()
                var delivered = 0
                vpnd_allocations_begin()
                for _ in 0..<10_000 {
                    if pair.carry(upBytes, from: pair.client, to: pair.server, source: clientAt) { delivered += 1 }
                    if pair.carry(downBytes, from: pair.server, to: pair.client, source: serverAt) { delivered += 1 }
                }
                let allocations = vpnd_allocations_end()
                #expect(delivered == 20_000)
                #expect(allocations == 0)
                // Each packet sent after one received re-arms the new-handshake timer with jitter:
                // that must not draw from the system's entropy (a getrandom call per packet).
                let drawsBefore = pair.draws.calls
                for _ in 0..<1_000 {
                    _ = pair.carry(upBytes, from: pair.client, to: pair.server, source: clientAt)
                    _ = pair.carry(downBytes, from: pair.server, to: pair.client, source: serverAt)
                }
                #expect(pair.draws.calls == drawsBefore)
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
