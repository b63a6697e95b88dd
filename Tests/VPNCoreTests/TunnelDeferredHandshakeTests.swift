// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

/// The Tunnel with its handshakes deferred to a processor driven by hand: outcomes applied late,
/// out of date, or not at all.
@Suite("Tunnel: deferred handshakes")
struct TunnelDeferredHandshakeTests {
    /// B (the client) defers its handshakes; its jobs are taken, computed and applied by hand.
    static func deferredAtB() -> TwoPeerSimulator {
        var options = TwoPeerOptions()
        options.handshakesAtB = .deferred(capacity: HandshakeExecution.defaultCapacity)
        return TwoPeerSimulator(options)
    }

    /// A (the server) defers its handshakes, with room for `capacity` jobs.
    static func deferredAtA(capacity: Int = HandshakeExecution.defaultCapacity) -> TwoPeerSimulator {
        var options = TwoPeerOptions()
        options.handshakesAtA = .deferred(capacity: capacity)
        return TwoPeerSimulator(options)
    }

    /// B sends a packet that waits for a session.
    static func stage(_ sim: TwoPeerSimulator) {
        guard case .staged = sim.sendData(from: .b, payload: simPayload(1)) else {
            Issue.record("expected the packet to wait for a session")
            return
        }
    }

    /// B's first initiation (B inline), taken off the wire: A is fed by hand.
    static func initiation(_ sim: TwoPeerSimulator) throws -> [UInt8] {
        stage(sim)
        sim.network.dropAllInFlight()
        return try #require(sim.b.takeSent().first)
    }

    @Test("an initiation computed for an older ticket is thrown away; the newest goes out and completes")
    func staleInitiationIsDropped() throws {
        let sim = Self.deferredAtB()
        let start = sim.now
        Self.stage(sim)
        #expect(sim.handshakeJobs(.b).count == 1)
        #expect(sim.b.takeSent().isEmpty)  // nothing computed on this thread
        // The retry fires before the first job came back: a second job, a newer ticket.
        sim.run(until: start + .milliseconds(5400))
        #expect(sim.handshakeJobs(.b).count == 2)
        #expect(sim.b.tunnel.handshakesInFlight == 2)
        let outcomes = sim.computeHandshakes(.b)
        sim.run(for: .milliseconds(1))
        sim.complete(.b, outcomes[0])
        #expect(sim.b.takeSent().isEmpty)
        sim.run(for: .milliseconds(1))
        sim.complete(.b, outcomes[1])
        let initiations = sim.b.takeSent()
        #expect(initiations.count == 1)
        #expect(initiations.first?.count == 148)
        #expect(sim.b.tunnel.handshakesInFlight == 0)

        // A answers it inline; B's response job completes the session and flushes the staged
        // packet as a data message.
        sim.run(for: .milliseconds(8))
        #expect(sim.a.consumedCount == 1, "A refused the initiation")
        #expect(sim.a.takeSent().count == 1)
        #expect(sim.b.consumedCount == 1)
        #expect(sim.b.takeSent().isEmpty)
        #expect(sim.handshakeJobs(.b).count == 1)
        sim.completeHandshakes(.b)
        let data = sim.b.takeSent()
        #expect(data.count == 1)
        #expect(data.first?.first == 4)
        #expect(sim.b.peerStatus(sim.now).latestHandshake == sim.now)
    }

    /// B's first initiation is computed and answered; B holds A's response as a job, and its
    /// retry timer fires before that job is computed. Returns [complete (old index), initiate (new)].
    static func responseOvertakenByRetry(_ sim: TwoPeerSimulator) throws -> [HandshakeOutcome] {
        let start = sim.now
        stage(sim)
        sim.completeHandshakes(.b)
        try #require(sim.b.takeSent().count == 1)
        sim.run(for: .milliseconds(10))
        try #require(sim.a.takeSent().count == 1)
        #expect(sim.handshakeJobs(.b).count == 1)
        sim.run(until: start + .milliseconds(5400))
        let outcomes = sim.computeHandshakes(.b)
        #expect(outcomes.count == 2)
        sim.run(for: .milliseconds(1))
        return outcomes
    }

    @Test("a response whose initiation was superseded while it was computed installs no session")
    func supersededResponseIsDropped() throws {
        let sim = Self.deferredAtB()
        let outcomes = try Self.responseOvertakenByRetry(sim)
        sim.complete(.b, outcomes[0])
        let status = sim.b.peerStatus(sim.now)
        #expect(status.latestHandshake == nil)
        #expect(status.drops[.unexpectedHandshake] == 1)
        #expect(sim.b.takeSent().isEmpty)  // no data: no session
    }

    @Test("a response whose initiation was replaced by a newer one (another index) installs nothing; the newer goes out")
    func responseToReplacedInitiationIsDropped() throws {
        let sim = Self.deferredAtB()
        let outcomes = try Self.responseOvertakenByRetry(sim)
        // The newer initiation is applied first: a pending initiation under another index.
        sim.complete(.b, outcomes[1])
        #expect(sim.b.takeSent().count == 1)
        sim.run(for: .milliseconds(1))
        sim.complete(.b, outcomes[0])
        let status = sim.b.peerStatus(sim.now)
        #expect(status.latestHandshake == nil)
        #expect(status.drops[.unexpectedHandshake] == 1)
        #expect(sim.b.takeSent().isEmpty)
    }

    @Test("an initiation still being computed when the handshake gives up (90 s) is never sent")
    func giveUpMakesComputedInitiationStale() throws {
        let sim = Self.deferredAtB()
        Self.stage(sim)
        // Retries every 5 s (+ jitter); no outcome is ever applied, so no initiation leaves.
        sim.run(for: .seconds(100))
        #expect(sim.handshakeJobs(.b).count >= 18)
        let last = try #require(sim.computeHandshakes(.b).last)
        sim.complete(.b, last)
        #expect(sim.b.takeSent().isEmpty)
    }

    @Test("128 jobs in flight for the handshake thread put the interface under load: cookie reply, no job")
    func backlogMeansUnderLoad() throws {
        let sim = Self.deferredAtA()
        let initiation = try Self.initiation(sim)
        // 127 initiations from as many sources, one second apart each (never above the rate):
        // jobs in flight, not under load yet.
        for i in 0..<(Tunnel.underLoadBacklog - 1) {
            sim.clock.advance(by: .milliseconds(20))
            let source = Endpoint(ipv4: 198, 51, 100, UInt8(i % 250 + 1), port: UInt16(1000 + i))
            guard case .consumed = sim.receive(.a, initiation, from: source) else {
                Issue.record("initiation \(i) was not taken as a job")
                return
            }
        }
        let busyServer = sim.a.tunnel
        #expect(busyServer.handshakesInFlight == Tunnel.underLoadBacklog - 1)
        #expect(busyServer.takeHandshakeJobs().count == Tunnel.underLoadBacklog - 1)
        #expect(busyServer.handshakesInFlight == Tunnel.underLoadBacklog - 1, "taken is still in flight")
        // One more makes 128 in flight; the next one finds the interface under load.
        sim.clock.advance(by: .seconds(1))
        _ = sim.receive(.a, initiation, from: sim.b.endpoint)
        let result = sim.receive(.a, initiation, from: sim.b.endpoint)
        guard case .drop(.invalidMAC2) = result else {
            Issue.record("expected a cookie reply and an invalid-mac2 drop, got \(result)")
            return
        }
        #expect(busyServer.takeHandshakeJobs().count == 1)
        let replies = sim.a.takeSent()
        #expect(replies.count == 1)
        #expect(replies.first?.count == 64)
        #expect(replies.first?.first == 3)
    }

    @Test("jobs beyond the capacity are refused as queue-full; one the thread could not queue is counted and frees its place")
    func capacityRefusesJobs() throws {
        let sim = Self.deferredAtA(capacity: 2)
        let initiation = try Self.initiation(sim)
        let server = sim.a.tunnel
        for port in UInt16(1)...3 {
            _ = sim.receive(.a, initiation, from: Endpoint(ipv4: 198, 51, 100, 1, port: port))
        }
        #expect(server.handshakesInFlight == 2)
        #expect(server.status(now: sim.now).drops[.queueFull] == 1)
        let jobs = server.takeHandshakeJobs()
        #expect(jobs.count == 2)
        #expect(server.takeHandshakeJobs().isEmpty)
        server.handshakeJobNotTaken(jobs[1])
        #expect(server.handshakesInFlight == 1)
        #expect(server.status(now: sim.now).drops[.queueFull] == 2)
    }

    @Test("a replayed initiation is refused by the processor that answered the first copy")
    func processorKeepsReplayState() throws {
        let sim = TwoPeerSimulator()
        let initiation = try Self.initiation(sim)
        // The server side deferred as well: its processor answers the first copy, refuses the second.
        var serverProcessor = sim.a.tunnel.makeHandshakeProcessor()
        var entropy = SeededEntropy(seed: 12)
        let first = HandshakeJob(
            work: .respond(initiation.withUnsafeBytes { HandshakeMessage($0) }), peer: .max, ticket: 0,
            source: sim.b.endpoint, submittedAt: .zero + .seconds(1))
        let replay = HandshakeJob(
            work: .respond(initiation.withUnsafeBytes { HandshakeMessage($0) }), peer: .max, ticket: 0,
            source: sim.b.endpoint, submittedAt: .zero + .seconds(2))
        guard case .response = serverProcessor.process(first, entropy: &entropy).result else {
            Issue.record("the first copy was not answered")
            return
        }
        guard case .refused(.staleTimestamp) = serverProcessor.process(replay, entropy: &entropy).result else {
            Issue.record("the replayed copy was not refused as stale")
            return
        }
    }
}
