// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// The Tunnel with its handshakes deferred to a processor driven by hand: outcomes applied late,
/// out of date, or not at all.
@Suite("Tunnel: deferred handshakes")
struct TunnelDeferredHandshakeTests {
    static let serverAt = Endpoint(ipv4: 192, 0, 2, 1, port: 51820)
    static let clientAt = Endpoint(ipv4: 192, 0, 2, 2, port: 40000)

    /// A client with deferred handshakes (its jobs taken into `jobs` as the daemon would) and an
    /// inline server.
    final class World {
        var taken: [HandshakeJob] = []
        /// The client's jobs so far, taken from it and not yet computed.
        var jobs: [HandshakeJob] {
            taken += client.takeHandshakeJobs()
            return taken
        }
        var client: Tunnel!
        let server: Tunnel
        var processor: HandshakeProcessor!
        var entropy = SeededEntropy(seed: 77)
        let slot = TestSlot()
        var stamp: Int64 = 1_700_000_000

        init() {
            var keys = SeededEntropy(seed: 3)
            let serverKey = X25519.generatePrivateKey(using: &keys)
            let clientKey = X25519.generatePrivateKey(using: &keys)
            server = Tunnel(
                configuration: TunnelConfiguration(
                    mode: .tun, privateKey: serverKey, mtu: 1420,
                    peers: [PeerConfiguration(publicKey: X25519.publicKey(for: clientKey), allowedIPs: [IPPrefix("10.8.0.2/32")!])]),
                entropy: SeededEntropy(seed: 4), timestamps: StepTimestamps())
            client = Tunnel(
                configuration: TunnelConfiguration(
                    mode: .tun, privateKey: clientKey, mtu: 1420,
                    peers: [
                        PeerConfiguration(
                            publicKey: X25519.publicKey(for: serverKey), allowedIPs: [IPPrefix("10.8.0.0/24")!],
                            endpoint: TunnelDeferredHandshakeTests.serverAt)
                    ]),
                entropy: SeededEntropy(seed: 5), timestamps: StepTimestamps(),
                handshakes: .deferred(capacity: HandshakeExecution.defaultCapacity))
            processor = client.makeHandshakeProcessor()
        }

        /// Computes every queued job and returns the outcomes (not yet applied).
        func compute() -> [HandshakeOutcome] {
            let all = jobs
            taken.removeAll()
            return all.map { processor.process($0, entropy: &entropy) }
        }

        /// Takes the client's outbox.
        func clientSent() -> [[UInt8]] { drain(client) }
        func serverSent() -> [[UInt8]] { drain(server) }
        func drainOutbox(_ tunnel: Tunnel) -> [[UInt8]] { drain(tunnel) }

        private func drain(_ tunnel: Tunnel) -> [[UInt8]] {
            var out: [[UInt8]] = []
            while tunnel.outbox.dequeue({ out.append($0.buffer.array) }) {}
            return out
        }

        func stagePacket(now: Instant) {
            var packet = slot.buffer(TestPackets.ipv4(from: IPAddress("10.8.0.2")!, to: IPAddress("10.8.0.1")!, payload: simPayload(1)))
            guard case .staged = client.encapsulate(&packet, now: now) else {
                Issue.record("expected the packet to wait for a session")
                return
            }
        }

        func deliver(_ message: [UInt8], to tunnel: Tunnel, from source: Endpoint, now: Instant) -> DecapsulateResult {
            var buffer = slot.buffer(message, headroom: 0)
            return tunnel.decapsulate(&buffer, from: source, now: now)
        }
    }

    struct StepTimestamps: TimestampSource {
        var seconds: Int64 = 1_700_000_000
        mutating func timestamp() -> TAI64N {
            seconds += 1
            return TAI64N(unixSeconds: seconds, nanoseconds: 0)
        }
    }

    @Test("an initiation computed for an older ticket is thrown away; the newest goes out and completes")
    func staleInitiationIsDropped() throws {
        let world = World()
        world.stagePacket(now: .zero)
        #expect(world.jobs.count == 1)
        #expect(world.clientSent().isEmpty)  // nothing computed on this thread
        // The retry fires before the first job came back: a second job, a newer ticket.
        world.client.tick(now: .zero + .milliseconds(5400))
        #expect(world.jobs.count == 2)
        #expect(world.client.handshakesInFlight == 2)
        let outcomes = world.compute()
        world.client.completeHandshake(outcomes[0], now: .zero + .milliseconds(5401))
        #expect(world.clientSent().isEmpty)
        world.client.completeHandshake(outcomes[1], now: .zero + .milliseconds(5402))
        let initiations = world.clientSent()
        #expect(initiations.count == 1)
        #expect(initiations.first?.count == 148)
        #expect(world.client.handshakesInFlight == 0)

        // The server answers it inline; the client's response job completes the session and
        // flushes the staged packet as a data message.
        let now = Instant.zero + .milliseconds(5410)
        guard case .consumed = world.deliver(initiations[0], to: world.server, from: Self.clientAt, now: now) else {
            Issue.record("the server refused the initiation")
            return
        }
        let responses = world.serverSent()
        #expect(responses.count == 1)
        #expect(world.deliver(responses[0], to: world.client, from: Self.serverAt, now: now).isConsumed)
        #expect(world.clientSent().isEmpty)
        #expect(world.jobs.count == 1)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: now) }
        let data = world.clientSent()
        #expect(data.count == 1)
        #expect(data.first?.first == 4)
        #expect(world.client.status(now: now).peers[0].latestHandshake == now)
    }

    @Test("a response whose initiation was superseded while it was computed installs no session")
    func supersededResponseIsDropped() throws {
        let world = World()
        world.stagePacket(now: .zero)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: .zero) }
        let initiation = try #require(world.clientSent().first)
        _ = world.deliver(initiation, to: world.server, from: Self.clientAt, now: .zero)
        let response = try #require(world.serverSent().first)
        _ = world.deliver(response, to: world.client, from: Self.serverAt, now: .zero + .milliseconds(10))
        #expect(world.jobs.count == 1)
        // Before its outcome comes back, the retry timer makes a new initiation.
        world.client.tick(now: .zero + .milliseconds(5400))
        let outcomes = world.compute()
        #expect(outcomes.count == 2)
        world.client.completeHandshake(outcomes[0], now: .zero + .milliseconds(5401))
        let status = world.client.status(now: .zero + .milliseconds(5401))
        #expect(status.peers[0].latestHandshake == nil)
        #expect(status.peers[0].drops[.unexpectedHandshake] == 1)
        #expect(world.clientSent().isEmpty)  // no data: no session
    }

    @Test("a response whose initiation was replaced by a newer one (another index) installs nothing; the newer goes out")
    func responseToReplacedInitiationIsDropped() throws {
        let world = World()
        world.stagePacket(now: .zero)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: .zero) }
        let initiation = try #require(world.clientSent().first)
        _ = world.deliver(initiation, to: world.server, from: Self.clientAt, now: .zero)
        let response = try #require(world.serverSent().first)
        _ = world.deliver(response, to: world.client, from: Self.serverAt, now: .zero + .milliseconds(10))
        world.client.tick(now: .zero + .milliseconds(5400))
        let outcomes = world.compute()  // [complete (old index), initiate (new)]
        #expect(outcomes.count == 2)
        // The newer initiation is applied first: a pending initiation under another index.
        world.client.completeHandshake(outcomes[1], now: .zero + .milliseconds(5401))
        #expect(world.clientSent().count == 1)
        world.client.completeHandshake(outcomes[0], now: .zero + .milliseconds(5402))
        let status = world.client.status(now: .zero + .milliseconds(5402))
        #expect(status.peers[0].latestHandshake == nil)
        #expect(status.peers[0].drops[.unexpectedHandshake] == 1)
        #expect(world.clientSent().isEmpty)
    }

    @Test("an initiation still being computed when the handshake gives up (90 s) is never sent")
    func giveUpMakesComputedInitiationStale() throws {
        let world = World()
        world.stagePacket(now: .zero)
        var now = Instant.zero
        // Retries every 5 s (+ jitter); no outcome is ever applied, so no initiation leaves.
        while now < .zero + .seconds(100) {
            now = now + .milliseconds(500)
            world.client.tick(now: now)
        }
        #expect(world.jobs.count >= 18)
        let last = try #require(world.compute().last)
        world.client.completeHandshake(last, now: now)
        #expect(world.clientSent().isEmpty)
    }

    @Test("128 jobs in flight for the handshake thread put the interface under load: cookie reply, no job")
    func backlogMeansUnderLoad() throws {
        let world = World()
        world.stagePacket(now: .zero)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: .zero) }
        let initiation = try #require(world.clientSent().first)
        let busyServer = Tunnel(
            configuration: world.server.configuration, entropy: SeededEntropy(seed: 8), timestamps: StepTimestamps(),
            handshakes: .deferred(capacity: HandshakeExecution.defaultCapacity))
        // 127 initiations from as many sources, one second apart each (never above the rate):
        // jobs in flight, not under load yet.
        var now = Instant.zero
        for i in 0..<(Tunnel.underLoadBacklog - 1) {
            now = now + .milliseconds(20)
            let source = Endpoint(ipv4: 198, 51, 100, UInt8(i % 250 + 1), port: UInt16(1000 + i))
            guard case .consumed = world.deliver(initiation, to: busyServer, from: source, now: now) else {
                Issue.record("initiation \(i) was not taken as a job")
                return
            }
        }
        #expect(busyServer.handshakesInFlight == Tunnel.underLoadBacklog - 1)
        #expect(busyServer.takeHandshakeJobs().count == Tunnel.underLoadBacklog - 1)
        #expect(busyServer.handshakesInFlight == Tunnel.underLoadBacklog - 1, "taken is still in flight")
        // One more makes 128 in flight; the next one finds the interface under load.
        _ = world.deliver(initiation, to: busyServer, from: Self.clientAt, now: now + .seconds(1))
        let result = world.deliver(initiation, to: busyServer, from: Self.clientAt, now: now + .seconds(1))
        guard case .drop(.invalidMAC2) = result else {
            Issue.record("expected a cookie reply and an invalid-mac2 drop, got \(result)")
            return
        }
        #expect(busyServer.takeHandshakeJobs().count == 1)
        let replies = world.drainOutbox(busyServer)
        #expect(replies.count == 1)
        #expect(replies.first?.count == 64)
        #expect(replies.first?.first == 3)
    }

    @Test("jobs beyond the capacity are refused as queue-full; one the thread could not queue is counted and frees its place")
    func capacityRefusesJobs() throws {
        let world = World()
        world.stagePacket(now: .zero)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: .zero) }
        let initiation = try #require(world.clientSent().first)
        let server = Tunnel(
            configuration: world.server.configuration, entropy: SeededEntropy(seed: 9), timestamps: StepTimestamps(),
            handshakes: .deferred(capacity: 2))
        for port in UInt16(1)...3 {
            _ = world.deliver(initiation, to: server, from: Endpoint(ipv4: 198, 51, 100, 1, port: port), now: .zero)
        }
        #expect(server.handshakesInFlight == 2)
        #expect(server.status(now: .zero).drops[.queueFull] == 1)
        let jobs = server.takeHandshakeJobs()
        #expect(jobs.count == 2)
        #expect(server.takeHandshakeJobs().isEmpty)
        server.handshakeJobNotTaken(jobs[1])
        #expect(server.handshakesInFlight == 1)
        #expect(server.status(now: .zero).drops[.queueFull] == 2)
    }

    @Test("a replayed initiation is refused by the processor that answered the first copy")
    func processorKeepsReplayState() throws {
        let world = World()
        world.stagePacket(now: .zero)
        for outcome in world.compute() { world.client.completeHandshake(outcome, now: .zero) }
        let initiation = try #require(world.clientSent().first)
        // The server side deferred as well: its processor answers the first copy, refuses the second.
        var serverProcessor = world.server.makeHandshakeProcessor()
        var entropy = SeededEntropy(seed: 12)
        let first = HandshakeJob(
            work: .respond(initiation.withUnsafeBytes { HandshakeMessage($0) }), peer: .max, ticket: 0,
            source: Self.clientAt, submittedAt: .zero + .seconds(1))
        let replay = HandshakeJob(
            work: .respond(initiation.withUnsafeBytes { HandshakeMessage($0) }), peer: .max, ticket: 0,
            source: Self.clientAt, submittedAt: .zero + .seconds(2))
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
