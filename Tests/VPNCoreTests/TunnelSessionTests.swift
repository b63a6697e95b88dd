// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

@Suite("Tunnel: sessions, rekeying, expiry and routing between two simulated peers")
struct TunnelSessionTests {
    let a = TwoPeerSimulator.endpointA
    let b = TwoPeerSimulator.endpointB

    @Test("rekey at 120 s under continuous traffic both ways: every packet arrives exactly once")
    func rekeyLosesNothing() {
        var options = TwoPeerOptions()
        // Delay with jitter: packets sealed on the old key are still in flight when the new one
        // takes over, and arrive out of order.
        options.impairment = Impairment(delay: .milliseconds(20), jitter: .milliseconds(15))
        let sim = TwoPeerSimulator(options)
        sim.connect()
        let start = sim.now
        var sent = 0
        while sim.now < start + .seconds(200) {
            #expect(sim.sendData(from: .b, payload: simPayload(sent)).isSend)
            #expect(sim.sendData(from: .a, payload: simPayload(sent)).isSend)
            sent += 1
            sim.run(for: .milliseconds(10))
        }
        sim.run(for: .seconds(1))
        #expect(sent == 20_000)
        #expect(simSequences(sim.a) .sorted() == Array(0..<sent), "B → A: each packet exactly once")
        #expect(simSequences(sim.b).sorted() == Array(0..<sent), "A → B: each packet exactly once")
        #expect(sim.a.drops.isEmpty && sim.b.drops.isEmpty)
        // One rekey, started by the initiator (B) once its key was older than 120 s.
        let initiations = sim.network.sent(.initiation, from: b)
        #expect(initiations.count == 2)
        #expect(sim.network.sent(.initiation, from: a).isEmpty)
        if initiations.count == 2 {
            let age = initiations[1].sentAt - initiations[0].sentAt
            #expect(age > .seconds(120) && age < .milliseconds(120_100))
        }
        // Both directions switched to the new session's indexes.
        let responses = sim.network.sent(.response, from: a)
        let lastFromB = sim.network.sent(.transportData, from: b).last
        let lastFromA = sim.network.sent(.transportData, from: a).last
        #expect(lastFromB?.index4 == responses.last?.index4)
        #expect(lastFromA?.index4 == initiations.last?.index4)
        // Old-key packets still in flight at the switch were accepted (the previous slot).
        #expect(sim.network.sent(.transportData, from: b).contains { $0.index4 == responses.first?.index4
            && $0.sentAt > responses.last!.deliverAt })
    }

    @Test("random loss, duplication and reordering over 300 s: nothing delivered twice, sessions survive two rekeys")
    func impairedTraffic() {
        var options = TwoPeerOptions()
        options.seed = 42
        options.impairment = Impairment(
            loss: 0.05, duplication: 0.05, reordering: 0.1, delay: .milliseconds(10), jitter: .milliseconds(10),
            reorderDelay: .milliseconds(30))
        let sim = TwoPeerSimulator(options)
        let start = sim.now
        var sent = 0
        while sim.now < start + .seconds(300) {
            sim.sendData(from: .b, payload: simPayload(sent))
            sim.sendData(from: .a, payload: simPayload(sent))
            sent += 1
            sim.run(for: .milliseconds(100))
        }
        sim.run(for: .seconds(1))
        for peer in [sim.a, sim.b] {
            let received = simSequences(peer)
            #expect(Set(received).count == received.count, "\(peer.side) delivered a packet twice")
            #expect(received.count > sent * 85 / 100, "\(peer.side) received \(received.count) of \(sent)")
            // Only duplicates (replayed) and packets that outlived a lost handshake may be refused.
            #expect(peer.drops.allSatisfy { [.replayed, .keyExpired, .unexpectedHandshake, .staleTimestamp].contains($0) },
                    "\(peer.side) drops: \(Set(peer.drops))")
        }
        #expect(sim.network.sent(.initiation, from: b).count >= 3)
        #expect(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now))
    }

    @Test("expiry at 180 s: a key that old neither sends nor receives")
    func expiry() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let established = sim.now
        // From now on every handshake message is lost, so no rekey can succeed.
        sim.network.filter = { $0.messageType == .transportData }
        sim.sendData(from: .b, payload: simPayload(0))
        sim.run(until: established + .seconds(121))
        #expect(sim.sendData(from: .b, payload: simPayload(1)).isSend, "at 121 s the key still sends (and asks for a rekey)")
        #expect(sim.network.sent(.initiation, from: b).count >= 2)
        sim.run(until: established + .seconds(178))
        #expect(sim.sendData(from: .a, payload: simPayload(2)).isSend)
        // A message sealed just before 180 s, held back until just after.
        var held: [UInt8]? = nil
        sim.network.filter = { datagram in
            if datagram.messageType == .transportData, held == nil, datagram.source == TwoPeerSimulator.endpointB {
                held = datagram.bytes
                return false
            }
            return datagram.messageType == .transportData
        }
        #expect(sim.sendData(from: .b, payload: simPayload(3)).isSend)
        let message = try #require(held)
        sim.run(until: established + .seconds(181))
        #expect(sim.receive(.a, message, from: b).isDrop(.keyExpired))
        #expect(!sim.a.hasSession(sim.now) && !sim.b.hasSession(sim.now))
        #expect(sim.sendData(from: .b, payload: simPayload(4)).isStaged)
        #expect(sim.sendData(from: .a, payload: simPayload(5)).isStaged)
        #expect(simSequences(sim.a) == [0, 1])
        #expect(simSequences(sim.b) == [2])
        #expect(sim.a.peerStatus(sim.now).drops[.keyExpired] == 1)
    }

    @Test("after 540 s without a new session every key is zeroed (and staged packets dropped)")
    func zeroing() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        let established = sim.now
        var held: [UInt8]? = nil
        sim.network.filter = { datagram in
            if datagram.messageType == .transportData, held == nil {
                held = datagram.bytes
            }
            return false  // the network is down from now on
        }
        sim.sendData(from: .b, payload: simPayload(0))
        let message = try #require(held)
        sim.run(until: established + .seconds(200))
        #expect(sim.receive(.a, message, from: b).isDrop(.keyExpired), "expired, still known")
        // B's last try before zeroing is staged.
        sim.run(until: established + .seconds(538))
        #expect(sim.sendData(from: .b, payload: simPayload(1)).isStaged)
        sim.run(until: established + .seconds(545))
        #expect(sim.receive(.a, message, from: b).isDrop(.unknownReceiverIndex), "zeroed: the index is gone")
        // The network heals; whatever B staged before the zeroing is not sent on the new session.
        sim.network.filter = nil
        sim.sendData(from: .b, payload: simPayload(2))
        sim.run(for: .seconds(6))
        #expect(simSequences(sim.a) == [2])
    }

    @Test("reordering inside the replay window is accepted; duplicates and counters too old are not")
    func reorderingWindow() throws {
        let sim = TwoPeerSimulator()
        sim.connect()
        var held: [Datagram] = []
        sim.network.filter = { datagram in
            if datagram.messageType == .transportData { held.append(datagram) }
            return false
        }
        let count = 9000
        for i in 0..<count { sim.sendData(from: .b, payload: simPayload(i)) }
        #expect(held.count == count)
        let byCounter = Dictionary(uniqueKeysWithValues: held.map { ($0.dataCounter, $0) })
        let highest = try #require(held.map(\.dataCounter).max())
        var entropy = SeededEntropy(seed: 5)

        // The newest first, then a shuffled stretch inside the window: all delivered.
        #expect(sim.receive(.a, byCounter[highest]!.bytes, from: b).isDeliver)
        var inside = Array((highest - 500)..<highest)
        for i in stride(from: inside.count - 1, to: 0, by: -1) {
            inside.swapAt(i, Int(entropy.next(below: UInt64(i + 1))))
        }
        for counter in inside { #expect(sim.receive(.a, byCounter[counter]!.bytes, from: b).isDeliver) }
        // A duplicate is refused.
        #expect(sim.receive(.a, byCounter[inside[7]]!.bytes, from: b).isDrop(.replayed))
        // The window's edge: highest − 8128 is accepted, highest − 8129 is not.
        #expect(sim.receive(.a, byCounter[highest - 8128]!.bytes, from: b).isDeliver)
        #expect(sim.receive(.a, byCounter[highest - 8129]!.bytes, from: b).isDrop(.replayed))
        #expect(sim.receive(.a, byCounter[1]!.bytes, from: b).isDrop(.replayed))
        #expect(sim.a.delivered.count == 502)
        #expect(sim.a.peerStatus(sim.now).drops[.replayed] == 3)
    }

    @Test("cryptokey routing: an inner source outside AllowedIPs is dropped, a destination with no peer has no route")
    func cryptokeyRouting() {
        let sim = TwoPeerSimulator()
        sim.connect()
        let spoofed = TestPackets.ipv4(from: IPAddress(ipv4: 10, 0, 0, 99), to: sim.a.address, payload: simPayload(1))
        #expect(sim.send(.b, spoofed).isSend, "B routes by destination and seals it")
        sim.run(for: .milliseconds(10))
        #expect(sim.a.drops == [.sourceNotAllowed])
        #expect(sim.a.delivered.isEmpty)
        #expect(sim.a.peerStatus(sim.now).drops[.sourceNotAllowed] == 1)

        let nowhere = TestPackets.ipv4(from: sim.a.address, to: IPAddress(ipv4: 10, 0, 0, 77), payload: simPayload(2))
        #expect(sim.send(.a, nowhere).isDrop(.noRoute))
        #expect(sim.a.tunnel.status(now: sim.now).drops[.noRoute] == 1)
        let v6 = TestPackets.ipv6(from: IPAddress("fd00::2")!, to: IPAddress("fd00::1")!, payload: simPayload(3))
        #expect(sim.send(.b, v6).isDrop(.noRoute))
        // Not an IP packet at all.
        #expect(sim.send(.b, [0x00, 1, 2, 3]).isDrop(.noRoute))
        // The permitted source still gets through.
        sim.sendData(from: .b, payload: simPayload(4))
        sim.run(for: .milliseconds(10))
        #expect(simSequences(sim.a) == [4])
    }

    @Test("IPv6 inner packets are routed and checked like IPv4")
    func ipv6Routing() {
        var options = TwoPeerOptions()
        options.addressA = IPAddress("fd00::1")!
        options.addressB = IPAddress("fd00::2")!
        options.allowedAtA = [IPPrefix("fd00::2/128")!]
        options.allowedAtB = [IPPrefix("fd00::/64")!]
        let sim = TwoPeerSimulator(options)
        let packet = TestPackets.ipv6(from: sim.b.address, to: sim.a.address, payload: simPayload(1, count: 77))
        #expect(sim.send(.b, packet).isStaged)
        sim.run(for: .seconds(1))
        #expect(sim.a.delivered == [packet])
        let reply = TestPackets.ipv6(from: sim.a.address, to: sim.b.address, payload: simPayload(2))
        #expect(sim.send(.a, reply).isSend)
        let spoofed = TestPackets.ipv6(from: IPAddress("fd00::3")!, to: sim.a.address, payload: simPayload(3))
        #expect(sim.send(.b, spoofed).isSend)
        sim.run(for: .milliseconds(10))
        #expect(sim.b.delivered == [reply])
        #expect(sim.a.drops == [.sourceNotAllowed])
    }

    @Test("roaming: authenticated data from a new source endpoint moves the peer's endpoint; forgeries do not")
    func roaming() {
        let sim = TwoPeerSimulator()
        sim.connect()
        let moved = Endpoint(ipv4: 203, 0, 113, 9, port: 50_000)
        // A forged data message from elsewhere changes nothing.
        var forged = [UInt8](repeating: 0, count: 64)
        forged[0] = 4
        let index = sim.network.sent(.response, from: a)[0].index4
        for i in 0..<4 { forged[4 + i] = UInt8(truncatingIfNeeded: index >> (8 * UInt32(i))) }
        forged[9] = 0x10  // counter 4096: fresh, so the tag is what refuses it
        #expect(sim.receive(.a, forged, from: moved).isDrop(.authenticationFailed))
        #expect(sim.a.peerStatus(sim.now).endpoint == b)

        sim.b.endpoint = moved  // NAT rebinding
        sim.sendData(from: .b, payload: simPayload(1))
        sim.run(for: .milliseconds(10))
        #expect(simSequences(sim.a) == [1])
        #expect(sim.a.peerStatus(sim.now).endpoint == moved)
        #expect(sim.a.events.contains {
            if case .endpointChanged(_, .some, let endpoint) = $0 { endpoint == Endpoint(ipv4: 203, 0, 113, 9, port: 50000) } else { false }
        })
        guard case .send(let to) = sim.sendData(from: .a, payload: simPayload(2)) else {
            Issue.record("A could not send")
            return
        }
        #expect(to == moved)
        sim.run(for: .milliseconds(10))
        #expect(simSequences(sim.b) == [2])
        #expect(sim.network.undeliverableCount == 0)
    }

    @Test("status counters match what each side sent and received, keepalives included")
    func statusCounters() {
        let sim = TwoPeerSimulator()
        sim.connect()
        var bytesFromB: UInt64 = 0
        var bytesFromA: UInt64 = 0
        for i in 0..<7 {
            let packet = sim.dataPacket(from: .b, payload: simPayload(i, count: 10 + 100 * i))
            bytesFromB += UInt64(packet.count)
            sim.send(.b, packet)
        }
        for i in 0..<3 {
            let packet = sim.dataPacket(from: .a, payload: simPayload(i, count: 33 * (i + 1)))
            bytesFromA += UInt64(packet.count)
            sim.send(.a, packet)
        }
        sim.run(for: .milliseconds(20))
        var statusA = sim.a.peerStatus(sim.now)
        var statusB = sim.b.peerStatus(sim.now)
        #expect(statusB.sentBytes == bytesFromB && statusA.receivedBytes == bytesFromB)
        #expect(statusA.sentBytes == bytesFromA && statusB.receivedBytes == bytesFromA)
        #expect(statusA.sentPackets == 3)
        #expect(statusB.receivedPackets == 3)
        // B's keepalive that confirmed the session counts as a packet (of no bytes) on both ends.
        #expect(statusB.sentPackets == 8 && statusA.receivedPackets == 8)
        // A passive keepalive later: still consistent.
        sim.run(for: .seconds(11))
        statusA = sim.a.peerStatus(sim.now)
        statusB = sim.b.peerStatus(sim.now)
        #expect(statusA.sentPackets == statusB.receivedPackets)
        #expect(statusB.sentPackets == statusA.receivedPackets)
        #expect(statusA.sentBytes == bytesFromA && statusB.sentBytes == bytesFromB)
        #expect(statusA.sentPackets + statusB.sentPackets > 11, "a passive keepalive went out")
        #expect(statusA.hasSession && statusB.hasSession)
        #expect(statusA.latestHandshake != nil && statusA.endpoint == b && statusB.endpoint == a)
        #expect(statusA.drops.isEmpty && statusB.drops.isEmpty)
        // Drops are counted per reason.
        let replay = sim.network.sent(.transportData, from: b).last!.bytes
        sim.receive(.a, replay, from: b)
        sim.receive(.a, [9, 9, 9], from: b)
        #expect(sim.a.peerStatus(sim.now).drops[.replayed] == 1)
        #expect(sim.a.tunnel.status(now: sim.now).drops[.truncated] == 1)
    }

    @Test("persistent keepalive: an idle client sends one every interval")
    func persistentKeepalive() {
        var options = TwoPeerOptions()
        options.persistentKeepaliveAtB = .seconds(25)
        let sim = TwoPeerSimulator(options)
        sim.connect()
        let before = sim.network.sent(.transportData, from: b).count
        sim.run(for: .seconds(101))
        let keepalives = sim.network.sent(.transportData, from: b).dropFirst(before)
        #expect(keepalives.count == 4)
        #expect(keepalives.allSatisfy { $0.bytes.count == 32 })
    }
}
