// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCrypto
import VPNTesting

@testable import VPNCore

/// A multi-threaded owner's path through the core: seals and opens left in ``Tunnel/crypto``,
/// run out of order (as threads would), then sent and finished in order. The bytes on the wire
/// and what is delivered must be exactly those of the inline path.
@Suite("Tunnel: seals and opens deferred to the owner's packet threads")
struct TunnelDeferredCryptoTests {
    static let mtu = 1420

    /// `count` buffers of one slab, each holding data packet `first + i` from `side`.
    final class Packets {
        let slab: PacketSlab
        var buffers: [PacketBuffer]
        init(_ sim: TwoPeerSimulator, from side: SimulatedSide, count: Int, first: Int = 0) {
            let slab = PacketSlab(
                slotSize: PacketSlab.slotSize(payload: TunnelDeferredCryptoTests.mtu + 14, headroom: TransportData.headroom, tailroom: TransportData.tailroom),
                slotCount: max(1, count))
            self.slab = slab
            buffers = (0..<count).map { i in
                var buffer = slab.buffer(i, headroom: TransportData.headroom)
                sim.dataPacket(from: side, payload: simPayload(first + i, count: 20 + (i * 37) % 1300)).withUnsafeBytes {
                    buffer.append(contentsOf: $0)
                }
                return buffer
            }
        }
        func bytes(_ i: Int) -> [UInt8] { buffers[i].byteArray }
    }

    /// Runs the batch's jobs in chunks of 7, last chunk first: any order must do.
    static func runShuffled(_ batch: CryptoBatch) {
        var ranges: [Range<Int>] = []
        var start = 0
        while start < batch.count {
            ranges.append(start..<min(batch.count, start + 7))
            start += 7
        }
        for range in ranges.reversed() { batch.run(range) }
    }

    /// Seals `count` packets from B to A the deferred way; returns the wire bytes.
    static func sealDeferred(_ sim: TwoPeerSimulator, count: Int) -> [[UInt8]] {
        let packets = Packets(sim, from: .b, count: count)
        let tunnel = sim.b.tunnel
        for i in 0..<count {
            guard case .send = tunnel.encapsulate(&packets.buffers[i], now: sim.now, deferSeal: true) else {
                Issue.record("packet \(i) was not sent")
                return []
            }
        }
        runShuffled(tunnel.crypto)
        tunnel.crypto.reset()
        return (0..<count).map { packets.bytes($0) }
    }

    /// The same packets sealed inline by a twin simulator (same seed: same keys, same indexes).
    static func sealInline(_ sim: TwoPeerSimulator, count: Int) -> [[UInt8]] {
        let packets = Packets(sim, from: .b, count: count)
        return (0..<count).map { i in
            _ = sim.b.tunnel.encapsulate(&packets.buffers[i], now: sim.now)
            return packets.bytes(i)
        }
    }

    /// Receives `messages` at A as one deferred batch; returns the results in order.
    static func receiveDeferred(_ sim: TwoPeerSimulator, _ messages: [[UInt8]]) -> (results: [DecapsulateResult], delivered: [[UInt8]]) {
        let slab = PacketSlab(slotSize: 2048, slotCount: max(1, messages.count))
        var buffers = messages.enumerated().map { i, bytes in
            var buffer = slab.buffer(i, headroom: 0)
            bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
            return buffer
        }
        let tunnel = sim.a.tunnel
        var results: [DecapsulateResult?] = []
        var jobs: [(job: Int, message: Int)] = []
        for i in buffers.indices {
            let result = tunnel.beginDecapsulate(&buffers[i], from: TwoPeerSimulator.endpointB, now: sim.now)
            if result == nil { jobs.append((tunnel.crypto.count - 1, i)) }
            results.append(result)
        }
        runShuffled(tunnel.crypto)
        for (job, i) in jobs {
            results[i] = tunnel.finishDecapsulate(job: job, &buffers[i], from: TwoPeerSimulator.endpointB, now: sim.now)
        }
        tunnel.crypto.reset()
        var delivered: [[UInt8]] = []
        for (i, result) in results.enumerated() {
            if case .deliver? = result { delivered.append(buffers[i].byteArray) }
        }
        return (results.map { $0! }, delivered)
    }

    @Test("deferred seals give the inline path's bytes; deferred opens deliver every packet in order")
    func sameBytesAndOrder() {
        let deferredSim = TwoPeerSimulator()
        deferredSim.connect()
        let inlineSim = TwoPeerSimulator()
        inlineSim.connect()
        let wire = Self.sealDeferred(deferredSim, count: 200)
        #expect(wire.count == 200)
        #expect(wire == Self.sealInline(inlineSim, count: 200))
        let received = Self.receiveDeferred(deferredSim, wire)
        let expected = Packets(deferredSim, from: .b, count: 200)
        #expect(received.delivered == (0..<200).map { expected.bytes($0) })
        #expect(deferredSim.a.drops.isEmpty && deferredSim.b.drops.isEmpty)
        #expect(deferredSim.a.peerStatus(deferredSim.now).receivedPackets == inlineSim.b.peerStatus(inlineSim.now).sentPackets)
    }

    @Test("a duplicate within one batch is delivered once; a forged message is dropped and counted, the others go through")
    func duplicateAndForgery() {
        let sim = TwoPeerSimulator()
        sim.connect()
        var wire = Self.sealDeferred(sim, count: 10)
        wire.insert(wire[3], at: 6)  // a replay inside the batch, after the original
        let genuine = wire[8]
        wire[8][40] ^= 0x80  // a flipped ciphertext bit (the original message 7)
        let received = Self.receiveDeferred(sim, wire)
        #expect(received.results[6] == .drop(.replayed))
        #expect(received.results[8] == .drop(.authenticationFailed))
        #expect(received.delivered.count == 9)
        #expect(simPayloadSequences(received.delivered) == [0, 1, 2, 3, 4, 5, 6, 8, 9])
        #expect(sim.a.peerStatus(sim.now).drops[.authenticationFailed] == 1)
        #expect(sim.a.peerStatus(sim.now).drops[.replayed] == 1)
        // The forged message's counter was not marked: the genuine one still opens later.
        let late = Self.receiveDeferred(sim, [genuine])
        #expect(simPayloadSequences(late.delivered) == [7])
    }

    @Test("past the batch's capacity the core seals inline, and every packet still arrives intact")
    func fullBatchSealsInline() {
        let sim = TwoPeerSimulator()
        sim.connect()
        let count = Tuning.cryptoBatchCapacity + 100
        let packets = Packets(sim, from: .b, count: count)
        for i in 0..<count { _ = sim.b.tunnel.encapsulate(&packets.buffers[i], now: sim.now, deferSeal: true) }
        #expect(sim.b.tunnel.crypto.count == Tuning.cryptoBatchCapacity)
        sim.b.tunnel.crypto.runAll()
        sim.b.tunnel.crypto.reset()
        // Received in batches of 500: the last ones need no deferral.
        var delivered: [[UInt8]] = []
        var start = 0
        while start < count {
            let end = min(count, start + 500)
            delivered += Self.receiveDeferred(sim, (start..<end).map { packets.bytes($0) }).delivered
            start = end
        }
        #expect(simPayloadSequences(delivered) == Array(0..<count))
        #expect(sim.a.drops.isEmpty)
    }

    @Test("the responder's next session is confirmed by the first deferred message; the rest of the batch follows it")
    func confirmationInsideABatch() throws {
        var options = TwoPeerOptions()
        options.aKnowsBEndpoint = true
        let sim = TwoPeerSimulator(options)
        // B initiates and A answers: A holds the session as `next` until B's first data message.
        sim.b.tunnel.initiateHandshakes(now: sim.now)
        sim.pump()
        // Deliver B's initiation and A's response, but hold B's keepalive back.
        for datagram in sim.network.takeDue(now: sim.now + .milliseconds(1)) where datagram.messageType == .initiation {
            _ = sim.receive(.a, datagram.bytes, from: datagram.source)
        }
        for datagram in sim.network.takeDue(now: sim.now + .milliseconds(5)) where datagram.messageType == .response {
            _ = sim.receive(.b, datagram.bytes, from: datagram.source)
        }
        _ = sim.network.takeDue(now: sim.now + .milliseconds(10))  // the confirming keepalive: lost
        let peerAtA = try #require(sim.a.tunnel.peers[0])
        #expect(peerAtA.slots.next != nil && peerAtA.slots.current == nil)
        let wire = Self.sealDeferred(sim, count: 20)
        let received = Self.receiveDeferred(sim, wire)
        #expect(simPayloadSequences(received.delivered) == Array(0..<20))
        #expect(peerAtA.slots.current != nil && peerAtA.slots.next == nil)
    }

    @Test("AES-256-GCM sessions defer the same way")
    func aesDeferred() throws {
        try #require(AES256GCM.isAvailable)
        var options = TwoPeerOptions()
        options.cipher = .aes256GCM
        let sim = TwoPeerSimulator(options)
        sim.connect()
        let twin = TwoPeerSimulator(options)
        twin.connect()
        let wire = Self.sealDeferred(sim, count: 64)
        #expect(wire == Self.sealInline(twin, count: 64))
        #expect(simPayloadSequences(Self.receiveDeferred(sim, wire).delivered) == Array(0..<64))
    }
}

/// The numbers of the numbered payloads in delivered IPv4 packets.
func simPayloadSequences(_ packets: [[UInt8]]) -> [Int] {
    packets.compactMap { TestPackets.sequence(ofNumberedPayload: Array($0.dropFirst(20))).map { Int($0) } }
}
