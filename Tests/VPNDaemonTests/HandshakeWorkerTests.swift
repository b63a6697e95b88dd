// SPDX-License-Identifier: MIT
import Foundation
import Synchronization
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux
import VPNTesting

/// Handshakes deferred to a HandshakeWorker: the data plane never computes one itself.
@Suite struct HandshakeWorkerTests {
    @Test("deferred handshakes: a session forms, packets pass both ways byte-identical, three jobs in all")
    func deferredHandshakeCarriesTraffic() throws {
        let pair = try DaemonPair.udp(deferredHandshakes: true)
        let up = ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1))
        pair.client.device.inject(up)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten() == [up])
        let downs = (0..<50).map { ipv4Packet(from: serverInner, to: clientInner, payload: numbered($0, count: 1000)) }
        for p in downs { pair.server.device.inject(p) }
        try pump([pair.client, pair.server])
        #expect(pair.client.device.takeWritten() == downs)
        // The client wrote the initiation and consumed the response, the server answered.
        #expect(pair.client.worker?.processedCount == 2)
        #expect(pair.server.worker?.processedCount == 1)
        #expect(pair.client.tunnel.handshakesInFlight == 0)
        #expect(pair.server.tunnel.handshakesInFlight == 0)
    }

    @Test("no handshake message is computed on the packet thread: nothing leaves until the worker runs")
    func packetThreadOnlyQueuesHandshakeWork() throws {
        let pair = try DaemonPair.udp(deferredHandshakes: true)
        pair.client.device.inject(ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1)))
        // Data planes only, several rounds: the initiation is a queued job, not a datagram.
        for _ in 0..<5 {
            try pair.client.dataPlane.runOnce(timeoutCap: .zero)
            try pair.server.dataPlane.runOnce(timeoutCap: .zero)
        }
        #expect(pair.clientSocket.sentCount == 0)
        #expect(pair.client.tunnel.handshakesInFlight == 1)
        // The worker computes it and rings the data plane, which sends it.
        #expect(pair.client.runHandshakeWorker() == 1)
        try pair.client.dataPlane.runOnce(timeoutCap: .zero)
        #expect(pair.clientSocket.sentCount == 1)
        // The server's data plane admits the initiation (mac1) and queues it: no response yet.
        for _ in 0..<3 { try pair.server.dataPlane.runOnce(timeoutCap: .zero) }
        #expect(pair.serverSocket.sentCount == 0)
        #expect(pair.server.tunnel.handshakesInFlight == 1)
        #expect(pair.server.runHandshakeWorker() == 1)
        try pair.server.dataPlane.runOnce(timeoutCap: .zero)
        #expect(pair.serverSocket.sentCount == 1)
        try pump([pair.client, pair.server])
        #expect(pair.server.device.takeWritten().count == 1)
    }

    @Test("the worker's own thread: jobs from another thread are computed, the data plane is rung, stop ends the loop")
    func workerThreadComputesAndStops() throws {
        let ids = TestIdentities()
        let clientTunnel = Tunnel(
            configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), entropy: SeededEntropy(seed: 3),
            timestamps: CountingTimestamps())
        let doorbell = try EventFDWakeup()
        let dataPlaneWakeup = FakeWakeup()
        let worker = HandshakeWorker(doorbell: doorbell, dataPlaneWakeup: dataPlaneWakeup, capacity: 4)
        let poller = try EpollPoller()
        let processor = clientTunnel.makeHandshakeProcessor()
        let box = WorkerBox(worker: worker, processor: processor, poller: poller)
        let thread = Thread {
            _ = box.worker.run(processor: box.processor, entropy: SeededEntropy(seed: 9), poller: box.poller)
            box.finished.store(true, ordering: .releasing)
        }
        thread.start()
        let info = PeerHandshakeInfo(publicKey: ids.serverPublic)
        for n in 0..<3 {
            let job = HandshakeJob(
                work: .initiate(info, timestamp: TAI64N(unixSeconds: 1_700_000_000 + Int64(n), nanoseconds: 0)),
                peer: 0, ticket: UInt64(n), source: serverEndpoint, submittedAt: .zero)
            #expect(worker.submit(job))
        }
        var outcomes: [HandshakeOutcome] = []
        let deadline = Date().addingTimeInterval(10)
        while outcomes.count < 3 && Date() < deadline {
            outcomes += worker.takeOutcomes()
            usleep(1000)
        }
        #expect(outcomes.count == 3)
        #expect(outcomes.map(\.job.ticket) == [0, 1, 2])  // in submission order
        for outcome in outcomes {
            guard case .initiation = outcome.result else {
                Issue.record("expected an initiation, got \(outcome.result)")
                continue
            }
        }
        #expect(dataPlaneWakeup.signalCount >= 1)
        worker.requestStop()
        let stopDeadline = Date().addingTimeInterval(5)
        while !box.finished.load(ordering: .acquiring) && Date() < stopDeadline { usleep(1000) }
        let stopped = box.finished.load(ordering: .acquiring)
        #expect(stopped)
    }

    @Test("a stop requested just before the worker drains its doorbell still ends the loop (no lost wake-up)")
    func stopRacingTheDrainIsSeen() throws {
        let doorbell = try HookedWakeup()
        let worker = HandshakeWorker(doorbell: doorbell, dataPlaneWakeup: FakeWakeup())
        // The first drain happens right after the loop checked the stop flag: request the stop
        // there, so the drain swallows its signal.
        doorbell.beforeDrain = { worker.requestStop() }
        let ids = TestIdentities()
        let processor = Tunnel(
            configuration: ids.serverConfiguration(), entropy: SeededEntropy(seed: 1), timestamps: CountingTimestamps()
        ).makeHandshakeProcessor()
        let box = WorkerBox(worker: worker, processor: processor, poller: try EpollPoller())
        let thread = Thread {
            _ = box.worker.run(processor: box.processor, entropy: SeededEntropy(seed: 2), poller: box.poller)
            box.finished.store(true, ordering: .releasing)
        }
        thread.start()
        let deadline = Date().addingTimeInterval(5)
        while !box.finished.load(ordering: .acquiring) && Date() < deadline { usleep(1000) }
        let stopped = box.finished.load(ordering: .acquiring)
        #expect(stopped)
    }

    @Test("each ring holds capacity jobs and room for reconfigurations: a job waits while the outcome ring is full; taking outcomes makes room")
    func capacityBoundsTheRings() throws {
        let ids = TestIdentities()
        let worker = HandshakeWorker(doorbell: FakeWakeup(), dataPlaneWakeup: FakeWakeup(), capacity: 2)
        var processor = Tunnel(
            configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), entropy: SeededEntropy(seed: 1),
            timestamps: CountingTimestamps()
        ).makeHandshakeProcessor()
        var entropy = SeededEntropy(seed: 2)
        func job(_ n: Int) -> HandshakeJob {
            HandshakeJob(
                work: .initiate(PeerHandshakeInfo(publicKey: ids.serverPublic), timestamp: TAI64N(unixSeconds: Int64(n), nanoseconds: 0)),
                peer: 0, ticket: UInt64(n), source: serverEndpoint, submittedAt: .zero)
        }
        // Each ring has room for `capacity` jobs and the reconfigurations beyond them.
        let room = 2 + HandshakeWorker.reconfigurationRoom
        for n in 1...room { #expect(worker.submit(job(n))) }
        #expect(!worker.submit(job(room + 1)))
        #expect(worker.backlog == room)
        #expect(worker.processPending(with: &processor, entropy: &entropy) == room)
        #expect(worker.backlog == 0)
        #expect(worker.submit(job(room + 2)))
        #expect(worker.processPending(with: &processor, entropy: &entropy) == 0, "the outcome ring is full")
        #expect(worker.takeOutcomes().map(\.job.ticket) == (1...room).map(UInt64.init))
        #expect(worker.processPending(with: &processor, entropy: &entropy) == 1)
        #expect(worker.takeOutcomes().map(\.job.ticket) == [UInt64(room + 2)])
        // Left queued on purpose: the rings' deinit must release it and its heap-held message
        // (LeakSanitizer checks under scripts/sanitize).
        let bytes = [UInt8](repeating: 1, count: Spec.initiationSize)
        let leftover = HandshakeJob(
            work: .respond(bytes.withUnsafeBytes { HandshakeMessage($0) }), peer: .max, ticket: 0, source: serverEndpoint,
            submittedAt: .zero)
        #expect(worker.submit(leftover))
    }

    @Test("a full handshake capacity refuses the job: counted as queue-full, and the retry timer tries again later")
    func fullQueueIsCountedAndRetried() throws {
        let ids = TestIdentities()
        let tunnel = Tunnel(
            configuration: ids.clientConfiguration(serverEndpoint: serverEndpoint), entropy: SeededEntropy(seed: 5),
            timestamps: CountingTimestamps(), handshakes: .deferred(capacity: 1))
        let slab = PacketSlab(slotSize: 2048, slotCount: 1)
        var packet = slab.buffer(0, headroom: TransportData.headroom)
        ipv4Packet(from: clientInner, to: serverInner, payload: numbered(1)).withUnsafeBytes { packet.append(contentsOf: $0) }
        guard case .staged = tunnel.encapsulate(&packet, now: .zero) else {
            Issue.record("expected the packet to be staged")
            return
        }
        #expect(tunnel.handshakesInFlight == 1)
        // The handshake thread's queue was full: the job comes back.
        let refused = tunnel.takeHandshakeJobs()
        #expect(refused.count == 1)
        tunnel.handshakeJobNotTaken(refused[0])
        #expect(tunnel.status(now: .zero).peers[0].drops[.queueFull] == 1)
        #expect(tunnel.handshakesInFlight == 0)
        // REKEY_TIMEOUT (5 s) and at most 333 ms of jitter later, the retry is a new job.
        tunnel.tick(now: .zero + .milliseconds(5400))
        #expect(tunnel.takeHandshakeJobs().count == 1)
        #expect(tunnel.handshakesInFlight == 1)
    }
}

/// Hands the worker's thread-confined values to its thread.
private final class WorkerBox: @unchecked Sendable {
    let worker: HandshakeWorker
    let processor: HandshakeProcessor
    let poller: EpollPoller
    let finished = Atomic<Bool>(false)
    init(worker: HandshakeWorker, processor: HandshakeProcessor, poller: EpollPoller) {
        self.worker = worker
        self.processor = processor
        self.poller = poller
    }
}

/// An eventfd wakeup that runs a hook (once) before its first drain.
private final class HookedWakeup: Wakeup, @unchecked Sendable {
    private let inner: EventFDWakeup
    var beforeDrain: (() -> Void)?
    init() throws { inner = try EventFDWakeup() }
    var pollHandle: PollHandle { inner.pollHandle }
    func signal() { inner.signal() }
    func drain() {
        if let hook = beforeDrain {
            beforeDrain = nil
            hook()
        }
        inner.drain()
    }
}
