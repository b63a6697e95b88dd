// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore
import VPNTesting

// Fuzz target (a): datagrams into a live Tunnel with an established session.
//
// The world is a TwoPeerSimulator whose client B completed a handshake with server A; it is
// built once and rebuilt only when an input may have moved it far from that state (a handshake
// message consumed, 100 simulated seconds, 20,000 inputs). The first input byte is the control:
//
//   bits 0-1  0: the rest is a datagram from B's endpoint to A's decapsulate
//             1: the same from another endpoint (roaming, unknown source)
//             2: the rest is an inner packet: B encapsulates it, A decapsulates the result
//                (must deliver exactly the packet, or drop it as malformed / source not allowed)
//             3: B seals a fixed packet; the rest is XORed over the sealed message (bit 4: the
//                message is cut to the rest's length); A must drop any changed message
//   bits 2-3  simulated time before the call: +0, +1 ms, +1 s, +30 s
//   bit 5     both tunnels' timers run after the call (tick)

/// The two peers and their session, plus the buffers the harness uses.
final class DecapsulateWorld {
    static let seed: UInt64 = 0xF022_0001
    static let addressB6 = IPAddress("fd00::2")!
    static let addressA6 = IPAddress("fd00::1")!
    static let otherEndpoint = Endpoint(ipv4: 203, 0, 113, 9, port: 4_444)

    let sim: TwoPeerSimulator
    let established: Instant
    var now: Instant
    var inputs = 0
    /// A receive slot as large as the data plane's (a GRO-sized datagram).
    let receiveSlab = PacketSlab(slotSize: 65_535 + 64, slotCount: 1)

    /// A world with a session; with `skipCounters` B first seals (and throws away) 64 packets,
    /// so that what it seals in the harness never reuses a counter of the seed corpus's messages.
    init(skipCounters: Bool) {
        var options = TwoPeerOptions()
        options.seed = Self.seed
        options.allowedAtA = [IPPrefix(host: IPAddress(ipv4: 10, 0, 0, 2)), IPPrefix(host: Self.addressB6)]
        options.allowedAtB = [IPPrefix("0.0.0.0/0")!, IPPrefix("::/0")!]
        sim = TwoPeerSimulator(options)
        sim.connect()
        invariant(sim.a.hasSession(sim.now) && sim.b.hasSession(sim.now), "the fuzz world has no session")
        sim.network.recording = false
        established = sim.now
        now = sim.now
        if skipCounters {
            for _ in 0..<64 { _ = Self.fixedPacket.withUnsafeBytes { sealAtB($0) } }
        }
    }

    /// A's result for `bytes` arriving from `source` now; drains A's outbox and events.
    func deliverToA(_ bytes: UnsafeRawBufferPointer, from source: Endpoint) -> (DecapsulateResult, PacketBuffer) {
        var buffer = receiveSlab.buffer(0, headroom: 0)
        buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, buffer.tailroom)]))
        let result = sim.a.tunnel.decapsulate(&buffer, from: source, now: now)
        drain(sim.a.tunnel)
        return (result, buffer)
    }

    /// B seals `packet` for A; nil when B refuses it.
    func sealAtB(_ packet: UnsafeRawBufferPointer) -> PacketBuffer? {
        guard packet.count <= sim.supply.mtu else { return nil }
        var buffer = sim.supply.buffer(0)
        buffer.append(contentsOf: packet)
        let result = sim.b.tunnel.encapsulate(&buffer, now: now)
        drain(sim.b.tunnel)
        guard case .send = result else { return nil }
        return buffer
    }

    func drain(_ tunnel: Tunnel) {
        while !tunnel.outbox.isEmpty { tunnel.outbox.dequeue { _ in } }
        while tunnel.nextEvent() != nil {}
    }

    /// The fixed packet of control mode 3.
    static let fixedPacket = TestPackets.ipv4(
        from: IPAddress(ipv4: 10, 0, 0, 2), to: IPAddress(ipv4: 10, 0, 0, 1), payload: Array(0..<48))
}

nonisolated(unsafe) var world: DecapsulateWorld? = nil

func currentWorld() -> DecapsulateWorld {
    if let world, world.inputs < 20_000, world.now - world.established < .seconds(100) { return world }
    let fresh = DecapsulateWorld(skipCounters: true)
    world = fresh
    return fresh
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    guard size > 0 else { return 0 }
    let control = input.byte()
    let body = input.rest
    let w = currentWorld()
    w.inputs += 1
    switch (control >> 2) & 3 {
    case 1: w.now = w.now + .milliseconds(1)
    case 2: w.now = w.now + .seconds(1)
    case 3: w.now = w.now + .seconds(30)
    default: break
    }

    switch control & 3 {
    case 0, 1:
        let source = control & 3 == 0 ? TwoPeerSimulator.endpointB : DecapsulateWorld.otherEndpoint
        let (result, _) = w.deliverToA(body, from: source)
        if case .consumed = result, Wire.messageType(body) != .transportData { world = nil }
    case 2:
        guard let sealed = w.sealAtB(body) else { return 0 }
        let (result, delivered) = w.deliverToA(UnsafeRawBufferPointer(sealed.bytes), from: TwoPeerSimulator.endpointB)
        switch result {
        case .deliver:
            // The inner length field decides what is delivered: at most the packet plus its zero
            // padding (WireGuard does the same with a packet whose length field overstates it).
            let out = UnsafeRawBufferPointer(delivered.bytes)
            let common = min(out.count, body.count)
            invariant(out.count <= (body.count + 15) / 16 * 16, "delivered \(out.count) bytes of a \(body.count)-byte packet")
            invariant(out[0..<common].elementsEqual(body[0..<common]), "the delivered packet differs from the one B sealed")
            invariant(out[common...].allSatisfy { $0 == 0 }, "the delivered packet has non-zero bytes beyond the sealed one")
        case .consumed:
            invariant(false, "a sealed \(body.count)-byte packet was consumed as a keepalive")
        case .drop(let reason):
            invariant(reason == .malformedInnerPacket || reason == .sourceNotAllowed,
                      "a packet B sealed was dropped as \(reason)")
        }
    default:
        let original = DecapsulateWorld.fixedPacket
        guard let sealed = original.withUnsafeBytes({ w.sealAtB($0) }) else {
            invariant(false, "B could not seal the fixed packet")
            return 0
        }
        var message = Array(UnsafeRawBufferPointer(sealed.bytes))
        let genuine = message
        if control & 0x10 != 0 { message = Array(message.prefix(body.count)) }
        for (i, b) in body.enumerated() {
            if i < message.count { message[i] ^= b } else { message.append(b) }
        }
        let (result, delivered) = message.withUnsafeBytes { w.deliverToA($0, from: TwoPeerSimulator.endpointB) }
        if message == genuine {
            guard case .deliver = result else {
                invariant(false, "an unchanged sealed packet was not delivered: \(result)")
                return 0
            }
            invariant(UnsafeRawBufferPointer(delivered.bytes).elementsEqual(original), "the delivered packet differs")
        } else if case .drop = result {
        } else {
            invariant(false, "a changed data message was accepted: \(result)")
        }
    }
    if control & 0x20 != 0, let w = world {
        for tunnel in [w.sim.a.tunnel, w.sim.b.tunnel] {
            tunnel.tick(now: w.now)
            w.drain(tunnel)
        }
    }
    return 0
}

@_cdecl("FuzzDecapsulate_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: decapsulateSeeds, callback: fuzzOneInput)
}

/// Real messages from B (and A) of a world built exactly as the fuzzed one, so that they
/// authenticate there: data (IPv4, IPv6), a keepalive, a fresh initiation, its response, a
/// cookie reply; plus inner packets for control mode 2 and an unchanged message for mode 3.
func decapsulateSeeds() -> [Seed] {
    let w = DecapsulateWorld(skipCounters: false)
    let sim = w.sim
    let addressA = IPAddress(ipv4: 10, 0, 0, 1)
    let addressB = IPAddress(ipv4: 10, 0, 0, 2)
    var seeds: [Seed] = []
    let ipv4 = TestPackets.ipv4(from: addressB, to: addressA, payload: Array("ping from B".utf8), identification: 7)
    let ipv6 = TestPackets.ipv6(from: DecapsulateWorld.addressB6, to: DecapsulateWorld.addressA6, payload: Array("ping6".utf8))
    let wrongSource = TestPackets.ipv4(from: IPAddress(ipv4: 10, 9, 9, 9), to: addressA, payload: [1, 2, 3])
    seeds.append(Seed("inner-ipv4", [0x02] + ipv4))
    seeds.append(Seed("inner-ipv6", [0x02] + ipv6))
    seeds.append(Seed("inner-wrong-source", [0x02] + wrongSource))
    seeds.append(Seed("flip-none", [0x03]))
    seeds.append(Seed("flip-counter", [0x03, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
    seeds.append(Seed("cut-tag", [0x13] + [UInt8](repeating: 0, count: 70)))

    sim.network.recording = true
    for (name, packet) in [("data-ipv4", ipv4), ("data-ipv6", ipv6), ("data-wrong-source", wrongSource)] {
        let before = sim.network.log.count
        sim.send(.b, packet)
        seeds.append(Seed(name, [0x00] + sim.network.log[before].bytes))
    }
    // A keepalive: A sends, B answers nothing within 10 s, so B keeps the session alive.
    sim.sendData(from: .a, payload: Array("to B".utf8))
    let before = sim.network.log.count
    sim.run(for: .seconds(11))
    if let keepalive = sim.network.log[before...].first(where: {
        $0.source == TwoPeerSimulator.endpointB && $0.bytes.count == Spec.dataMinimumSize
    }) {
        seeds.append(Seed("data-keepalive", [0x00] + keepalive.bytes))
    }
    // A fresh initiation from B (newer timestamp) and A's response to it: B's rekey, due on its
    // first send after REKEY_AFTER_TIME.
    sim.run(for: .seconds(121))
    let mark = sim.network.log.count
    sim.sendData(from: .b, payload: Array("rekey".utf8))
    sim.pump()
    sim.run(for: .milliseconds(50))
    let log = sim.network.log[mark...]
    if let initiation = log.first(where: { $0.messageType == .initiation }) {
        seeds.append(Seed("initiation", [0x00] + initiation.bytes))
        // Flood A with copies until it is under load and answers with a cookie reply.
        let flood = sim.network.log.count
        for _ in 0..<80 { sim.receive(.a, initiation.bytes, from: TwoPeerSimulator.endpointB) }
        if let reply = sim.network.log[flood...].first(where: { $0.messageType == .cookieReply }) {
            seeds.append(Seed("cookie-reply", [0x00] + reply.bytes))
        }
    }
    if let response = log.first(where: { $0.messageType == .response }) {
        seeds.append(Seed("response", [0x00] + response.bytes))
    }
    seeds.append(Seed("garbage-type", [0x00, 5, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 40)))
    return seeds
}
