// SPDX-License-Identifier: MIT
// vpnd-microbench: one-core figures for the protocol core, printed and never asserted.
//
//   swift build -c release --product vpnd-microbench && .build/release/vpnd-microbench
//
// 1. Handshakes per second: initiation made, consumed, response made, consumed (both sides'
//    work, so one full handshake costs what an initiator and a responder spend together).
// 2. What answering an initiation costs the packet thread when handshakes are deferred to the
//    handshake thread (as in the daemon), against the handshake thread's share.
// 3. TransportData seal / open of 1420-byte packets against libsodium's raw
//    crypto_aead_chacha20poly1305_ietf_*_detached (VPNCrypto.ChaChaPoly) on the same buffers,
//    as Gbit/s and as a ratio: the cost of vpnd's framing, padding and replay window.
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

/// Monotonic seconds since an arbitrary origin (the executable may read a clock; VPNCore may not).
func seconds() -> Double {
    let d = ContinuousClock.now - benchmarkOrigin
    let (s, atto) = d.components
    return Double(s) + Double(atto) / 1e18
}
let benchmarkOrigin = ContinuousClock.now

/// Runs `body` in rounds of `batch` calls until `minimum` seconds have passed; returns calls/s.
func rate(minimum: Double = 1.0, batch: Int, _ body: () -> Void) -> Double {
    for _ in 0..<batch { body() }  // warm up
    var calls = 0
    let start = seconds()
    var elapsed = 0.0
    repeat {
        for _ in 0..<batch { body() }
        calls += batch
        elapsed = seconds() - start
    } while elapsed < minimum
    return Double(calls) / elapsed
}

func format(_ value: Double, decimals: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return String(rounded)
}

// MARK: - Handshakes

func benchmarkHandshakes() {
    var entropy = SeededEntropy(seed: 0x5EED)
    let initiator = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy))
    let responder = HandshakeIdentity(privateKey: X25519.generatePrivateKey(using: &entropy))
    let psk = SecretKey(random: &entropy)
    let towardResponder = PeerHandshakeInfo(publicKey: responder.publicKey, presharedKey: psk)
    var towardInitiator = PeerHandshakeInfo(publicKey: initiator.publicKey, presharedKey: psk)
    var initiatorJar = CookieJar(peerPublicKey: responder.publicKey)
    var responderJar = CookieJar(peerPublicKey: initiator.publicKey)
    let slab = PacketSlab(slotSize: 256, slotCount: 2)
    var initiation = slab.buffer(0, headroom: 0)
    var response = slab.buffer(1, headroom: 0)
    var tick: UInt64 = 0
    var completed = 0

    let perSecond = rate(batch: 64) {
        tick += 1
        // A second apart each time, so neither the timestamp nor the 20 ms flood guard refuses it.
        let now = Instant(nanoseconds: tick * 1_000_000_000)
        initiation.reset(headroom: 0)
        response.reset(headroom: 0)
        let message1 = initiation.append(Spec.initiationSize)
        guard
            let pending = try? initiator.createInitiation(
                peer: towardResponder, localIndex: UInt32(truncatingIfNeeded: tick), timestamp: TAI64N(
                    unixSeconds: Int64(tick), nanoseconds: 0), cookieJar: &initiatorJar, now: now,
                entropy: &entropy, into: message1),
            let consumed = responder.consumeInitiation(
                UnsafeRawBufferPointer(message1), now: now, lookupPeer: { _ in towardInitiator }
            ).value
        else { fatalError("vpnd-microbench: the initiation did not verify") }
        towardInitiator.lastTimestamp = consumed.timestamp
        towardInitiator.lastInitiationAt = now
        let message2 = response.append(Spec.responseSize)
        guard
            responder.createResponse(
                to: consumed, localIndex: UInt32(truncatingIfNeeded: tick &* 7), cookieJar: &responderJar, now: now,
                entropy: &entropy, into: message2
            ).value != nil,
            initiator.consumeResponse(UnsafeRawBufferPointer(message2), pending: pending).value != nil
        else { fatalError("vpnd-microbench: the response did not verify") }
        completed += 1
    }
    print("handshakes (initiation + response, both sides, one core): \(format(perSecond, decimals: 0)) /s")
    print("  = \(format(1e6 / perSecond)) µs per handshake; \(completed) completed")
}

// MARK: - What a handshake costs the packet thread

/// A responder Tunnel that defers its handshakes (as the daemon does): the packet thread's share
/// of each answered initiation (admission on receipt, then applying the outcome: index, MACs,
/// session install, outbox) against the handshake thread's (the processor: X25519 and Noise).
func benchmarkDeferredHandshakes() {
    var entropy = SeededEntropy(seed: 0xD1FF)
    let serverKey = X25519.generatePrivateKey(using: &entropy)
    let clientKey = X25519.generatePrivateKey(using: &entropy)
    let client = HandshakeIdentity(privateKey: clientKey)
    let towardServer = PeerHandshakeInfo(publicKey: X25519.publicKey(for: serverKey))
    var jar = CookieJar(peerPublicKey: towardServer.publicKey)
    let server = Tunnel(
        configuration: TunnelConfiguration(
            mode: .tun, privateKey: serverKey, mtu: mtu,
            peers: [PeerConfiguration(publicKey: client.publicKey, allowedIPs: [IPPrefix("10.8.0.2/32")!])]),
        entropy: SeededEntropy(seed: 1), timestamps: SystemlessTimestamps(),
        handshakes: .deferred(capacity: HandshakeExecution.defaultCapacity))
    var processor = server.makeHandshakeProcessor()
    var workerEntropy = SeededEntropy(seed: 2)
    let slab = PacketSlab(slotSize: 256, slotCount: 1)
    let source = Endpoint(ipv4: 192, 0, 2, 2, port: 40000)
    var packetThread = 0.0
    var handshakeThread = 0.0
    let rounds = 500
    for round in 1...rounds {
        let now = Instant(nanoseconds: UInt64(round) * 1_000_000_000)
        var buffer = slab.buffer(0, headroom: 0)
        let message = buffer.append(Spec.initiationSize)
        guard
            (try? client.createInitiation(
                peer: towardServer, localIndex: UInt32(round), timestamp: TAI64N(unixSeconds: Int64(round), nanoseconds: 0),
                cookieJar: &jar, now: now, entropy: &entropy, into: message)) != nil
        else { fatalError("vpnd-microbench: no initiation") }
        let t0 = seconds()
        _ = server.decapsulate(&buffer, from: source, now: now)
        let jobs = server.takeHandshakeJobs()
        let t1 = seconds()
        guard jobs.count == 1 else { fatalError("vpnd-microbench: the initiation was not deferred") }
        let outcome = processor.process(jobs[0], entropy: &workerEntropy)
        let t2 = seconds()
        server.completeHandshake(outcome, now: now)
        let t3 = seconds()
        guard server.outbox.dequeue({ _ in }) else { fatalError("vpnd-microbench: no response was sent") }
        packetThread += (t1 - t0) + (t3 - t2)
        handshakeThread += t2 - t1
    }
    print("answering an initiation, deferred as in the daemon (\(rounds) rounds):")
    print("  packet thread \(format(packetThread / Double(rounds) * 1e6)) µs (admission + applying the outcome)"
        + "   handshake thread \(format(handshakeThread / Double(rounds) * 1e6)) µs (X25519, Noise)")
}

/// Initiation timestamps for the responder's own Tunnel (it never initiates here).
struct SystemlessTimestamps: TimestampSource {
    mutating func timestamp() -> TAI64N { TAI64N(unixSeconds: 0, nanoseconds: 0) }
}

// MARK: - Transport data

let packetSize = 1420
let mtu = 1420

func gbps(_ packetsPerSecond: Double) -> Double { packetsPerSecond * Double(packetSize * 8) / 1e9 }

func benchmarkTransport() {
    var entropy = SeededEntropy(seed: 0xDA7A)
    let key = SecretKey(random: &entropy)
    let slotSize = TransportData.headroom + mtu + TransportData.tailroom + 64
    let slab = PacketSlab(slotSize: slotSize, slotCount: 1)
    let plaintext = PacketSlab(slotSize: slotSize, slotCount: 1)
    var source = plaintext.buffer(0, headroom: 0)
    entropy.fill(source.append(packetSize))

    var buffer = slab.buffer(0, headroom: TransportData.headroom)
    var counter: UInt64 = 0

    // Seal: copy the packet in (as a tun read would), then seal in place.
    let sealRate = rate(batch: 4096) {
        buffer.reset(headroom: TransportData.headroom)
        buffer.append(contentsOf: UnsafeRawBufferPointer(source.bytes))
        TransportData.seal(&buffer, receiverIndex: 7, counter: counter, key: key, padding: true, mtu: mtu)
        counter += 1
    }
    counter = 0
    let rawSealRate = rate(batch: 4096) {
        buffer.reset(headroom: TransportData.headroom)
        buffer.append(contentsOf: UnsafeRawBufferPointer(source.bytes))
        let body = buffer.bytes
        let tag = buffer.append(ChaChaPoly.tagByteCount)
        ChaChaPoly.seal(body, tag: tag.baseAddress!, key: key, counter: counter)
        counter += 1
    }

    // Open: a ring of sealed messages with increasing counters, each copied into the work buffer
    // and opened in place (a fresh replay window per pass round the ring).
    let ringSize = 1024
    let ring = PacketSlab(slotSize: slotSize, slotCount: ringSize)
    var messages: [PacketBuffer] = []
    for i in 0..<ringSize {
        var message = ring.buffer(i, headroom: TransportData.headroom)
        message.append(contentsOf: UnsafeRawBufferPointer(source.bytes))
        TransportData.seal(&message, receiverIndex: 7, counter: UInt64(i), key: key, padding: true, mtu: mtu)
        messages.append(message)
    }
    var replay = ReplayWindow()
    var next = 0
    var failures = 0
    let openRate = rate(batch: ringSize) {
        if next == ringSize {
            next = 0
            replay = ReplayWindow()
        }
        buffer.reset(headroom: 0)
        buffer.append(contentsOf: UnsafeRawBufferPointer(messages[next].bytes))
        if case .drop = TransportData.open(&buffer, key: key, replay: &replay) { failures += 1 }
        next += 1
    }
    next = 0
    let rawOpenRate = rate(batch: ringSize) {
        if next == ringSize { next = 0 }
        buffer.reset(headroom: 0)
        buffer.append(contentsOf: UnsafeRawBufferPointer(messages[next].bytes))
        let whole = buffer.bytes
        let bodyCount = whole.count - Spec.dataHeaderSize - Spec.tagSize
        let body = UnsafeMutableRawBufferPointer(start: whole.baseAddress! + Spec.dataHeaderSize, count: bodyCount)
        if !ChaChaPoly.open(body, tag: body.baseAddress! + bodyCount, key: key, counter: UInt64(next)) {
            failures += 1
        }
        next += 1
    }
    if failures > 0 { fatalError("vpnd-microbench: \(failures) messages did not open") }

    print("transport data, \(packetSize)-byte packets, one core (copy-in included in both columns):")
    print("  seal  TransportData \(format(gbps(sealRate))) Gbit/s (\(format(sealRate / 1e3, decimals: 0)) kpps)"
        + "   raw ChaChaPoly \(format(gbps(rawSealRate))) Gbit/s   ratio \(format(sealRate / rawSealRate, decimals: 3))")
    print("  open  TransportData \(format(gbps(openRate))) Gbit/s (\(format(openRate / 1e3, decimals: 0)) kpps)"
        + "   raw ChaChaPoly \(format(gbps(rawOpenRate))) Gbit/s   ratio \(format(openRate / rawOpenRate, decimals: 3))")
}

print("vpnd-microbench (figures, not assertions)")
benchmarkHandshakes()
benchmarkDeferredHandshakes()
benchmarkTransport()
benchmarkOffload()
