// SPDX-License-Identifier: MIT
import Synchronization
import Testing
import VPNBasics
@testable import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux
import VPNTesting

/// `Threads` > 1: the data plane hands each batch's seals and opens to a ``CryptoPool`` of real
/// threads (eventfd doorbells, epoll) and sends and delivers in order afterwards.
@Suite("Packet threads: seals and opens on a pool of threads, order kept")
struct PacketThreadsTests {
    @Test("300 packets each way through 3 packet threads per daemon: every packet, byte for byte, in order", arguments: [2, 3])
    func packetsInOrder(threads: Int) throws {
        let pair = try DaemonPair.udp(packetThreads: threads)
        #expect(pair.server.daemon.cryptoPool?.workerCount == threads - 1)
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(-1)))
        try pump([pair.client, pair.server])
        _ = pair.server.device.takeWritten()
        for round in 0..<3 {
            let ups = (0..<100).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered(round * 100 + $0, count: 40 + $0 * 13)) }
            let downs = (0..<100).map { ipv4Packet(from: serverInner, to: clientInner, payload: numbered(round * 100 + $0, count: 1300 - $0 * 7)) }
            for p in ups { pair.client.device.inject(p) }
            for p in downs { pair.server.device.inject(p) }
            try pump([pair.client, pair.server])
            #expect(pair.server.device.takeWritten() == ups)
            #expect(pair.client.device.takeWritten() == downs)
        }
        let server = try #require(try pair.server.snapshot())
        let client = try #require(try pair.client.snapshot())
        #expect(server.drops.isEmpty && server.peers[0].drops.isEmpty)
        #expect(client.drops.isEmpty && client.peers[0].drops.isEmpty)
    }

    @Test("duplicated and reordered datagrams with 3 packet threads: each packet delivered exactly once")
    func duplicatesWithThreads() throws {
        let pair = try DaemonPair.udp(seed: 42, impairment: .init(duplication: 0.3, reordering: 0.3), packetThreads: 3)
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(-1)))
        try pump([pair.client, pair.server])
        pair.datagrams.releaseHeld()
        try pump([pair.client, pair.server])
        _ = pair.server.device.takeWritten()
        let packets = (0..<300).map { ipv4Packet(from: clientInner, to: serverInner, payload: numbered($0)) }
        for p in packets { pair.client.device.inject(p) }
        try pump([pair.client, pair.server])
        pair.datagrams.releaseHeld()
        try pump([pair.client, pair.server])
        let delivered = pair.server.device.takeWritten()
        #expect(pair.datagrams.duplicated > 0)
        #expect(delivered.count == packets.count)
        #expect(Set(delivered) == Set(packets))
        let status = try #require(try pair.server.snapshot())
        #expect((status.peers[0].drops[.replayed] ?? 0) > 0)
    }

    @Test("Threads = auto: half the CPUs, at least 1, at most 8")
    func automatic() {
        #expect([1, 2, 3, 4, 8, 16, 17, 64].map { PacketThreads.automatic(cpus: $0) } == [1, 1, 1, 2, 4, 8, 8, 8])
    }

    @Test("the pool alone: 2,000 batches of 1 to 300 seals on 4 threads match the same seals done inline")
    func poolMatchesInline() throws {
        let batch = CryptoBatch(capacity: 512)
        let workers = try (0..<3).map { _ in (doorbell: try EventFDWakeup() as any Wakeup, poller: try EpollPoller(capacity: 4) as any Poller) }
        let pool = try CryptoPool(batch: batch, workers: workers, finished: (wakeup: try EventFDWakeup(), poller: try EpollPoller(capacity: 4)))
        #expect(pool.start(threads: PosixThreads()))
        defer { pool.stop() }
        var entropy = SeededEntropy(seed: 9)
        let key = TransportKey(SecretKey(random: &entropy))
        let slab = PacketSlab(slotSize: 256, slotCount: 300)
        let reference = PacketSlab(slotSize: 256, slotCount: 1)
        var generator = SplitMix64(seed: 5)
        for round in 0..<2_000 {
            let count = 1 + Int(generator.next() % 300)
            var buffers: [PacketBuffer] = []
            for i in 0..<count {
                var buffer = slab.buffer(i, headroom: TransportData.headroom)
                let bytes = (0..<(16 + i % 100)).map { UInt8(truncatingIfNeeded: $0 &+ i &+ round) }
                bytes.withUnsafeBytes { buffer.append(contentsOf: $0) }
                buffers.append(buffer)
            }
            for i in 0..<count {
                let (body, tag) = TransportData.layOut(&buffers[i], receiverIndex: 1, counter: UInt64(round * 1000 + i), mtu: 1420)
                batch.appendSeal(body: body, tag: tag, counter: UInt64(round * 1000 + i), key: key)
            }
            pool.run(batch)
            batch.reset()
            for i in [0, count / 2, count - 1] {
                var expected = reference.buffer(0, headroom: TransportData.headroom)
                let bytes = (0..<(16 + i % 100)).map { UInt8(truncatingIfNeeded: $0 &+ i &+ round) }
                bytes.withUnsafeBytes { expected.append(contentsOf: $0) }
                TransportData.seal(&expected, receiverIndex: 1, counter: UInt64(round * 1000 + i), key: key, mtu: 1420)
                #expect(buffers[i].byteArray == expected.byteArray, "round \(round), job \(i) of \(count)")
            }
        }
    }
}
