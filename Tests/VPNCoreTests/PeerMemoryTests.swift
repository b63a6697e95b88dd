// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNTesting

@testable import VPNCore

/// What an idle peer holds (a server with 10,000 configured peers keeps ~3 KiB each): no staging
/// queue until a packet waits for a handshake, no keypair box until a session exists.
@Suite("Peer memory: staging queues and keypair slots only while in use")
struct PeerMemoryTests {
    @Test("a peer holds a staging queue only while packets wait, and the queue goes back to the spares")
    func stagingQueueIsLentWhileNeeded() throws {
        let sim = TwoPeerSimulator()
        let peerAtB = try #require(sim.b.tunnel.peers[0])
        #expect(peerAtB.staged == nil)
        #expect(peerAtB.slots.isEmpty && !peerAtB.slots.isAllocated)
        #expect(MemoryLayout<KeypairSlots>.size == MemoryLayout<Int>.size)
        for i in 0..<3 {
            guard case .staged = sim.sendData(from: .b, payload: simPayload(i)) else {
                Issue.record("packet \(i) was not staged")
                return
            }
        }
        #expect(peerAtB.staged?.count == 3)
        sim.run(for: .seconds(1))
        #expect(simSequences(sim.a) == [0, 1, 2])
        #expect(peerAtB.staged == nil, "the flushed queue is still held")
        #expect(sim.b.tunnel.spareStagingQueues.count == 1)
        #expect(!peerAtB.slots.isEmpty)
    }

    @Test("a handshake that gives up drops the staged packets and returns the queue; zeroed keys free the slots")
    func gaveUpAndZeroedReleaseEverything() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let peerAtB = try #require(sim.b.tunnel.peers[0])
        #expect(!peerAtB.slots.isEmpty)
        // Silence from A from now on: B's keys age out (REJECT_AFTER_TIME x 3 zeroes them) and its
        // staged packet is dropped when the handshake round gives up.
        // The endpoint by value: a filter that captured `sim` would keep it alive (a cycle).
        let endpointA = sim.a.endpoint
        sim.network.filter = { $0.source != endpointA }
        sim.run(for: .seconds(200))
        guard case .staged = sim.sendData(from: .b, payload: simPayload(9)) else {
            Issue.record("with expired keys the packet was not staged")
            return
        }
        #expect(peerAtB.staged != nil)
        sim.run(for: .seconds(600))
        #expect(peerAtB.staged == nil)
        #expect(peerAtB.slots.isEmpty && !peerAtB.slots.isAllocated, "zeroed keys free the keypair box")
        #expect(sim.b.tunnel.spareStagingQueues.count == 1)
    }

    @Test("at most Tuning.spareStagingQueues spare queues are kept")
    func sparesAreBounded() throws {
        let sim = TwoPeerSimulator()
        let tunnel = sim.b.tunnel
        let peer = try #require(tunnel.peers[0])
        for _ in 0..<(Tuning.spareStagingQueues + 5) {
            tunnel.spareStagingQueues.append(
                FrameQueue(capacity: 1, slotSize: 64, headroom: 0))
        }
        // The peer takes a spare; with more than the limit left, its queue is freed, not kept.
        _ = tunnel.stagingQueue(for: peer)
        #expect(tunnel.spareStagingQueues.count == Tuning.spareStagingQueues + 4)
        tunnel.releaseStaging(peer)
        #expect(tunnel.spareStagingQueues.count == Tuning.spareStagingQueues + 4)
        tunnel.spareStagingQueues.removeAll()
        _ = tunnel.stagingQueue(for: peer)
        tunnel.releaseStaging(peer)
        #expect(tunnel.spareStagingQueues.count == 1)
    }
}
