// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// The payload of test packet `i`: its number and some bytes derived from it.
func simPayload(_ i: Int, count: Int = 64) -> [UInt8] { TestPackets.numberedPayload(UInt64(i), count: count) }

/// The sequence numbers of the packets `peer` received, in delivery order.
func simSequences(_ peer: SimulatedPeer) -> [Int] {
    peer.deliveredPayloads.compactMap { TestPackets.sequence(ofNumberedPayload: $0).map { Int($0) } }
}

extension Datagram {
    /// Bytes 4..<8 as little-endian: the sender index of an initiation or response, the receiver
    /// index of a cookie reply or data message.
    var index4: UInt32 { bytes[4..<8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
    /// Bytes 8..<12 as little-endian: the receiver index of a response.
    var index8: UInt32 { bytes[8..<12].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
    /// The counter of a data message.
    var dataCounter: UInt64 { bytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
}

extension FakeNetwork {
    /// The datagrams of `type` sent from `source`.
    func sent(_ type: MessageType, from source: Endpoint) -> [Datagram] {
        log.filter { $0.messageType == type && $0.source == source }
    }
}

@Suite("Tunnel: handshakes between two simulated peers")
struct TunnelHandshakeTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB

    @Test("B initiates, A answers, B's keepalive confirms: both sides hold a session")
    func handshake() {
        let sim = TwoPeerSimulator()
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        sim.connect()
        #expect(sim.b.hasSession(sim.now))
        #expect(sim.a.hasSession(sim.now))
        let kinds = sim.network.log.map { $0.messageType }
        #expect(kinds == [.initiation, .response, .transportData])
        #expect(sim.network.log.map(\.bytes.count) == [148, 92, 32])
        // The response answers the initiation's index; the keepalive uses the responder's index.
        let log = sim.network.log
        #expect(log[1].index8 == log[0].index4)
        #expect(log[2].index4 == log[1].index4)
        #expect(sim.a.peerStatus(sim.now).endpoint == b)
        #expect(sim.a.peerStatus(sim.now).latestHandshake != nil)
        #expect(sim.b.events.contains(.handshakeCompleted(peer: sim.a.tunnel.identity.publicKey, weInitiated: true, firstSession: true)))
        #expect(sim.a.events.contains(.handshakeCompleted(peer: sim.b.tunnel.identity.publicKey, weInitiated: false, firstSession: true)))
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)
    }

    @Test("data flows both ways after the handshake, every packet intact and in order")
    func dataBothWays() {
        let sim = TwoPeerSimulator()
        sim.connect()
        for i in 0..<100 {
            guard case .send(let to) = sim.sendData(from: .b, payload: simPayload(i, count: 8 + i * 13)) else {
                Issue.record("B could not send packet \(i)")
                return
            }
            #expect(to == a)
            guard case .send = sim.sendData(from: .a, payload: simPayload(1000 + i, count: 8 + i)) else {
                Issue.record("A could not send packet \(i)")
                return
            }
            sim.run(for: .milliseconds(3))
        }
        #expect(sim.a.deliveredPayloads == (0..<100).map { simPayload($0, count: 8 + $0 * 13) })
        #expect(sim.b.deliveredPayloads == (0..<100).map { simPayload(1000 + $0, count: 8 + $0) })
        // Delivered packets lose the padding: exactly the bytes that went in.
        #expect(sim.a.delivered[5] == sim.dataPacket(from: .b, payload: simPayload(5, count: 8 + 5 * 13)))
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)
    }

    @Test("packets sent before the handshake are staged and all delivered, in order, right after it")
    func stagedPacketsFlushInOrder() {
        let sim = TwoPeerSimulator()
        for i in 0..<20 {
            guard case .staged = sim.sendData(from: .b, payload: simPayload(i)) else {
                Issue.record("packet \(i) was not staged")
                return
            }
        }
        // One initiation for all twenty packets (REKEY_TIMEOUT throttles the rest).
        #expect(sim.network.sent(.initiation, from: b).count == 1)
        sim.run(for: .seconds(1))
        #expect(simSequences(sim.a) == Array(0..<20))
        // The staged data confirms the session: no separate keepalive was needed.
        #expect(sim.network.sent(.transportData, from: b).count == 20)
        #expect(sim.a.hasSession(sim.now))
    }

    @Test("the responder keeps the new keypair in `next` until the initiator's first message, and only then sends with it")
    func responderWaitsForConfirmation() throws {
        let sim = TwoPeerSimulator()
        var keepalivesLost = 0
        let b = self.b
        sim.network.filter = { datagram in
            // Lose B's confirming keepalive.
            if datagram.messageType == .transportData && datagram.bytes.count == 32 && keepalivesLost == 0 {
                keepalivesLost += 1
                return false
            }
            // A must not start a crossing handshake of its own (below); should it, lose that too
            // so that only B's confirmation can help A.
            return !(datagram.messageType == .initiation && datagram.source != b)
        }
        sim.connect()
        #expect(keepalivesLost == 1)
        #expect(sim.b.hasSession(sim.now))
        #expect(!sim.a.hasSession(sim.now), "A must not send on an unconfirmed keypair")
        let responderIndex = try #require(sim.network.sent(.response, from: a).first).index4
        let initiatorIndex = try #require(sim.network.sent(.initiation, from: b).first).index4

        // A has a packet for B: not sealed, staged.
        guard case .staged = sim.sendData(from: .a, payload: simPayload(1)) else {
            Issue.record("A sent before the session was confirmed")
            return
        }
        #expect(sim.network.sent(.transportData, from: a).isEmpty)
        // Its response went out less than REKEY_TIMEOUT ago: that counts as a recent handshake
        // (wireguard-go's lastSentHandshake), so no initiation of its own.
        #expect(sim.network.sent(.initiation, from: a).isEmpty)
        sim.run(for: .milliseconds(100))
        #expect(sim.b.delivered.isEmpty)

        // B's first data message confirms it; A's staged packet then goes out on that keypair.
        let confirmAt = sim.now
        sim.sendData(from: .b, payload: simPayload(2))
        sim.run(for: .milliseconds(100))
        #expect(simSequences(sim.a) == [2])
        #expect(simSequences(sim.b) == [1])
        let fromA = sim.network.sent(.transportData, from: a)
        let first = try #require(fromA.first)
        #expect(first.index4 == initiatorIndex, "sealed with the keypair B initiated")
        #expect(first.sentAt > confirmAt)
        // And B's data went to A's index of that keypair.
        #expect(sim.network.sent(.transportData, from: b).allSatisfy { $0.index4 == responderIndex })
        #expect(sim.a.hasSession(sim.now))
    }

    enum LostMessage: String, CaseIterable, Sendable { case initiation, response, confirmation }

    @Test("losing any single handshake message is recovered by the retry", arguments: LostMessage.allCases)
    func singleLossRecovered(lost: LostMessage) {
        let sim = TwoPeerSimulator(TwoPeerOptions())
        var dropped = false
        sim.network.filter = { datagram in
            guard !dropped else { return true }
            let hit: Bool
            switch lost {
            case .initiation: hit = datagram.messageType == .initiation
            case .response: hit = datagram.messageType == .response
            case .confirmation: hit = datagram.messageType == .transportData
            }
            if hit { dropped = true }
            return !hit
        }
        for i in 0..<3 { sim.sendData(from: .b, payload: simPayload(i)) }
        sim.run(for: .seconds(12))
        #expect(dropped)
        switch lost {
        case .initiation, .response:
            // The retry went out REKEY_TIMEOUT (+ jitter ≤ 333 ms) after the first initiation.
            let initiations = sim.network.sent(.initiation, from: b)
            #expect(initiations.count == 2)
            if initiations.count == 2 {
                let gap = initiations[1].sentAt - initiations[0].sentAt
                #expect(gap >= .seconds(5) && gap <= .milliseconds(5333))
            }
            #expect(simSequences(sim.a) == [0, 1, 2])
        case .confirmation:
            // The first staged packet was the confirmation and is lost; the second confirms instead.
            #expect(sim.network.sent(.initiation, from: b).count == 1)
            #expect(simSequences(sim.a) == [1, 2])
            sim.sendData(from: .b, payload: simPayload(3))
            sim.run(for: .milliseconds(50))
            #expect(simSequences(sim.a) == [1, 2, 3])
        }
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))
        guard case .send = sim.sendData(from: .a, payload: simPayload(9)) else {
            Issue.record("A has no session to send with")
            return
        }
        sim.run(for: .milliseconds(50))
        #expect(simSequences(sim.b) == [9])
    }

    @Test("a replayed initiation is rejected as stale and changes nothing, from any source")
    func replayedInitiation() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let initiation = try #require(sim.network.sent(.initiation, from: b).first)
        sim.run(for: .seconds(1))
        #expect(sim.receive(.a, initiation.bytes, from: b).isDrop(.staleTimestamp))
        let attacker = Endpoint(ipv4: 203, 0, 113, 66, port: 1234)
        #expect(sim.receive(.a, initiation.bytes, from: attacker).isDrop(.staleTimestamp))
        // No response went out, the endpoint did not move and the session still works.
        #expect(sim.network.sent(.response, from: a).count == 1)
        #expect(sim.a.peerStatus(sim.now).endpoint == b)
        sim.sendData(from: .b, payload: simPayload(1))
        sim.sendData(from: .a, payload: simPayload(2))
        sim.run(for: .milliseconds(50))
        #expect(simSequences(sim.a) == [1] && simSequences(sim.b) == [2])
        // A restarted initiator whose clock is stuck is refused the same way.
        let stuck = HandshakeIdentity(privateKey: sim.privateKeyB)
        var jar = CookieJar(peerPublicKey: sim.a.tunnel.identity.publicKey)
        var entropy = SeededEntropy(seed: 99)
        var message = [UInt8](repeating: 0, count: Spec.initiationSize)
        try message.withUnsafeMutableBytes { out in
            _ = try stuck.createInitiation(
                peer: PeerHandshakeInfo(publicKey: sim.a.tunnel.identity.publicKey), localIndex: 77,
                timestamp: FixedTimestamps().value, cookieJar: &jar, now: sim.now, entropy: &entropy, into: out)
        }
        #expect(sim.receive(.a, message, from: b).isDrop(.staleTimestamp))
    }

    @Test("a wrong static key gives no session: mac1 fails at A, B retries and gives up")
    func wrongStaticKey() {
        var options = TwoPeerOptions()
        options.bHasWrongPublicKeyForA = true
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(100))
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        #expect(!sim.a.drops.isEmpty && sim.a.drops.allSatisfy { $0 == .invalidMAC1 })
        #expect(sim.network.sent(.response, from: a).isEmpty)
        #expect(sim.a.delivered.isEmpty)
        #expect(sim.b.events.contains { if case .handshakeGaveUp(_, _, true) = $0 { true } else { false } })
    }

    static let pskCases: [([UInt8]?, [UInt8]?)] = [
        ([UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32)),
        ([UInt8](repeating: 1, count: 32), nil),
        (nil, [UInt8](repeating: 2, count: 32)),
    ]

    @Test("a wrong or missing PSK gives no session: A answers, B cannot authenticate the response",
          arguments: Self.pskCases)
    func wrongPresharedKey(atA: [UInt8]?, atB: [UInt8]?) {
        var options = TwoPeerOptions()
        options.presharedKeyAtA = atA
        options.presharedKeyAtB = atB
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(30))
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        #expect(!sim.b.drops.isEmpty && sim.b.drops.allSatisfy { $0 == .handshakeFailed })
        #expect(sim.a.delivered.isEmpty && sim.b.delivered.isEmpty)
        #expect(sim.network.sent(.transportData, from: b).isEmpty)
        #expect(sim.b.events.contains { if case .responseNotAuthenticated = $0 { true } else { false } })
    }

    @Test("the same PSK on both sides works")
    func matchingPresharedKey() {
        var options = TwoPeerOptions()
        options.presharedKeyAtA = [UInt8](repeating: 7, count: 32)
        options.presharedKeyAtB = options.presharedKeyAtA
        let sim = TwoPeerSimulator(options)
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(for: .seconds(1))
        #expect(simSequences(sim.a) == [0])
    }

    @Test("two tap tunnels (identity \"vpnd v1 ethernet\") carry Ethernet frames exactly, unpadded")
    func tapPair() {
        var options = TwoPeerOptions()
        options.mode = .tap
        let sim = TwoPeerSimulator(options)
        #expect(sim.a.tunnel.identity.mode.identifier == "vpnd v1 ethernet")
        let frames = (0..<10).map { i in
            TestPackets.ethernet(
                destination: sim.a.mac, source: sim.b.mac, etherType: 0x88B5, payload: simPayload(i, count: 9 + i * 7))
        }
        for frame in frames { #expect(sim.send(.b, frame).isStaged) }
        sim.run(for: .seconds(1))
        #expect(sim.a.delivered == frames)
        let reply = TestPackets.ethernet(destination: sim.b.mac, source: sim.a.mac, payload: [1, 2, 3])
        #expect(sim.send(.a, reply).isSend)
        sim.run(for: .milliseconds(10))
        #expect(sim.b.delivered == [reply])
        // A 17-byte frame goes out as 16 + 17 + 16 bytes: tap does not pad.
        #expect(sim.network.sent(.transportData, from: a).last?.bytes.count == 16 + 17 + 16)
        // The largest frame, MTU + 14 bytes, fits; one byte more does not.
        let big = TestPackets.ethernet(
            destination: sim.a.mac, source: sim.b.mac, payload: [UInt8](repeating: 0xEE, count: options.mtu))
        #expect(sim.send(.b, big).isSend)
        #expect(sim.send(.b, big + [0]).isDrop(.packetTooBig))
        sim.run(for: .milliseconds(10))
        #expect(sim.a.delivered.last == big)
    }

    @Test("a tun peer and a tap peer never establish a session", arguments: [
        (HandshakeIdentity.Mode.tun, HandshakeIdentity.Mode.tap), (.tap, .tun),
    ])
    func tunTapMismatch(modeA: HandshakeIdentity.Mode, modeB: HandshakeIdentity.Mode) {
        var options = TwoPeerOptions()
        options.mode = modeA
        options.bMode = modeB
        let sim = TwoPeerSimulator(options)
        sim.send(.b, sim.dataPacket(from: .b, payload: simPayload(0)))
        sim.run(for: .seconds(30))
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        #expect(!sim.a.drops.isEmpty && sim.a.drops.allSatisfy { $0 == .handshakeFailed })
        #expect(sim.network.sent(.response, from: a).isEmpty)
        #expect(sim.a.events.contains { if case .initiationNotDecrypted = $0 { true } else { false } })
    }

    @Test("symmetric peers initiating at the same instant both end up with working sessions")
    func simultaneousInitiation() {
        var options = TwoPeerOptions()
        options.aKnowsBEndpoint = true
        let sim = TwoPeerSimulator(options)
        sim.a.tunnel.initiateHandshakes(now: sim.now)
        sim.b.tunnel.initiateHandshakes(now: sim.now)
        sim.run(for: .seconds(1))
        #expect(sim.network.sent(.initiation, from: a).count == 1)
        #expect(sim.network.sent(.initiation, from: b).count == 1)
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))
        for i in 0..<10 {
            sim.sendData(from: .a, payload: simPayload(i))
            sim.sendData(from: .b, payload: simPayload(100 + i))
            sim.run(for: .milliseconds(5))
        }
        #expect(simSequences(sim.b) == Array(0..<10))
        #expect(simSequences(sim.a) == Array(100..<110))
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)
    }

    @Test("in the symmetric variant the server may initiate too: its staged packets arrive")
    func serverInitiates() {
        var options = TwoPeerOptions()
        options.aKnowsBEndpoint = true
        let sim = TwoPeerSimulator(options)
        for i in 0..<5 { #expect(sim.sendData(from: .a, payload: simPayload(i)).isStaged) }
        sim.run(for: .seconds(1))
        #expect(simSequences(sim.b) == Array(0..<5))
        #expect(sim.network.sent(.initiation, from: b).isEmpty)
    }

    @Test("a server with no endpoint for its peer refuses to send (noEndpoint) until the peer calls")
    func serverWithoutEndpoint() {
        let sim = TwoPeerSimulator()
        #expect(sim.sendData(from: .a, payload: simPayload(0)).isDrop(.noEndpoint))
        #expect(sim.network.log.isEmpty)
        sim.connect()
        #expect(sim.sendData(from: .a, payload: simPayload(1)).isSend)
    }

    static func isGiveUp(_ event: TunnelEvent) -> Bool {
        if case .handshakeGaveUp = event { return true }
        return false
    }

    @Test("with no answer, B gives up after 90 s: staged packets are dropped and a warning is logged once")
    func giveUp() throws {
        let sim = TwoPeerSimulator()
        sim.network.filter = { _ in false }  // A is unreachable
        let start = sim.now
        for i in 0..<5 { sim.sendData(from: .b, payload: simPayload(i)) }
        // Step one second at a time until the warning appears.
        var gaveUpBy: Instant? = nil
        while sim.now < start + .seconds(120) {
            sim.run(for: .seconds(1))
            if sim.b.events.contains(where: Self.isGiveUp) {
                gaveUpBy = sim.now
                break
            }
        }
        let initiations = sim.network.sent(.initiation, from: b)
        #expect(initiations.count == 18, "MAX_TIMER_HANDSHAKES = 90 s / 5 s")
        let gaveUp = try #require(gaveUpBy)
        // 18 rounds of REKEY_TIMEOUT + jitter (≤ 333 ms) each: between 90 s and 96 s.
        #expect(gaveUp - start >= .seconds(90) && gaveUp - start <= .seconds(97))
        #expect(try #require(initiations.last).sentAt + .seconds(5) <= gaveUp)
        let warnings = sim.b.events.filter(Self.isGiveUp)
        #expect(warnings == [.handshakeGaveUp(peer: sim.a.tunnel.identity.publicKey, after: .seconds(90), configuredEndpoint: true)])
        // Nothing more goes out until new data asks for a handshake.
        sim.run(until: start + .seconds(200))
        #expect(sim.network.sent(.initiation, from: b).count == 18)
        #expect(sim.b.events.filter(Self.isGiveUp).count == 1)
        // The network heals; a new packet starts a new round; the old staged ones are gone.
        sim.network.filter = nil
        #expect(sim.sendData(from: .b, payload: simPayload(99)).isStaged)
        sim.run(for: .seconds(1))
        #expect(simSequences(sim.a) == [99])
    }
}

extension EncapsulateResult {
    var isSend: Bool { if case .send = self { true } else { false } }
    var isStaged: Bool { if case .staged = self { true } else { false } }
    func isDrop(_ reason: DropReason) -> Bool { if case .drop(let r) = self { r == reason } else { false } }
}

extension DecapsulateResult {
    var isDeliver: Bool { if case .deliver = self { true } else { false } }
    var isConsumed: Bool { if case .consumed = self { true } else { false } }
    var isDrop: Bool { if case .drop = self { true } else { false } }
    func isDrop(_ reason: DropReason) -> Bool { if case .drop(let r) = self { r == reason } else { false } }
}
