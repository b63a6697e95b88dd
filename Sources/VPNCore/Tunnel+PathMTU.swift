// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// Path MTU: what each peer's path carries (probes, echoes, ICMP and EMSGSIZE reports), what the
/// tunnel does with a packet that does not fit (an ICMP error back to its sender), and the MSS
/// clamp of TCP SYNs (docs/protocol.md "Path probes", docs/operations.md "Path MTU").
extension Tunnel {
    /// Outer overhead of a data message besides its IP header: UDP (8) + header (16) + tag (16).
    static let udpMessageOverhead = 8 + Spec.dataHeaderSize + Spec.tagSize
    /// ICMP errors sent back into the device per peer at most this often.
    static let tooBigInterval: Duration = .milliseconds(10)

    /// The underlay reported that datagrams to `destination` may be at most `outerMTU` bytes
    /// (IP header included): an ICMP "fragmentation needed" / "packet too big" that reached our
    /// socket, or a local `EMSGSIZE`. A port of 0 matches every peer at that address.
    public func pathMTUReported(destination: Endpoint, outerMTU: Int, now: Instant) {
        guard configuration.pathMTUDiscovery else { return }
        let ipHeader = destination.isIPv4 ? 20 : 40
        // The prober counts IP packets; in tap mode each carries a 14-byte Ethernet header too.
        let inner = outerMTU - ipHeader - Self.udpMessageOverhead - linkHeaderLength
        for case let peer? in peers {
            guard let endpoint = peer.endpoint, endpoint.address == destination.address,
                destination.port == 0 || endpoint.port == destination.port
            else { continue }
            if peer.prober.pathTooSmall(innerMTU: inner, now: now) {
                emit(.pathNarrowed(
                    peer: peer.configuration.publicKey, endpoint: endpoint, outerMTU: outerMTU, innerMTU: peer.prober.mtu))
            }
        }
    }

    /// 14 in tap mode (an Ethernet header in front of each IP packet), else 0.
    var linkHeaderLength: Int { configuration.mode == .tap ? 14 : 0 }

    /// A packet larger than the peer's path: tell its sender (tun mode, when it asked not to be
    /// fragmented), or drop it.
    func tooBig(_ packet: inout PacketBuffer, for peer: Peer, pathMTU: Int, now: Instant) -> EncapsulateResult {
        peer.count(.packetTooBig)
        guard configuration.mode == .tun,
            peer.lastTooBigAt.map({ now - $0 >= Self.tooBigInterval }) ?? true
        else { return .drop(.packetTooBig) }
        let count = packet.count
        let capacity = packet.count + packet.tailroom
        let room = UnsafeMutableRawBufferPointer(start: packet.bytes.baseAddress, count: capacity)
        guard let length = ICMPTooBig.write(into: room, count: count, mtu: pathMTU) else { return .drop(.packetTooBig) }
        peer.lastTooBigAt = now
        packet.truncate(to: min(length, count))
        if length > count { _ = packet.append(length - count) }
        return .reply
    }

    /// Lowers the MSS of a TCP SYN to what fits `pathMTU` (and the configured maximum).
    @inline(__always)
    func clampMSS(_ bytes: UnsafeMutableRawBufferPointer, pathMTU: Int, linkHeaderLength: Int) {
        var mss4 = pathMTU - 40
        var mss6 = pathMTU - 60
        if case .fixed(let limit) = configuration.mssClamp {
            mss4 = min(mss4, limit)
            mss6 = min(mss6, limit)
        }
        _ = MSSClamp.clamp(bytes, linkHeaderLength: linkHeaderLength, maximumSegmentSize4: mss4, maximumSegmentSize6: mss6)
    }

    /// A responder's session confirmed by the initiator's first authenticated message.
    func confirmSession(_ peer: Peer, now: Instant) {
        if let retired = peer.slots.confirmNext() { indexTable.remove(retired) }
        sessionEstablished(peer, weInitiated: false, now: now)
    }

    /// A session with `peer` is ours to send on: as initiator when its response authenticated,
    /// as responder when the initiator's first message confirmed it. Flushes what was staged.
    func sessionEstablished(_ peer: Peer, weInitiated: Bool, now: Instant) {
        let firstSession = peer.latestHandshake == nil
        peer.latestHandshake = now
        peer.handshakes &+= 1
        if case .gaveUp = peer.initiation { peer.initiation = .idle }
        peer.timers.handshakeCompleted(now: now)
        peer.selector?.sessionEstablished(now: now)
        emit(.handshakeCompleted(peer: peer.configuration.publicKey, weInitiated: weInitiated, firstSession: firstSession))
        flushStaged(peer, now: now)
        sessionCanSend(peer, now: now)
    }

    /// A session can send: start the path search the first time, go on with one that waited.
    func sessionCanSend(_ peer: Peer, now: Instant) {
        guard configuration.pathMTUDiscovery else { return }
        if peer.blackHoleSuspected {
            // Large packets went unanswered while this (small) handshake got through.
            peer.blackHoleSuspected = false
            if peer.prober.assumeBlackHole(now: now) {
                emit(.blackHoleAssumed(peer: peer.configuration.publicKey, innerMTU: peer.prober.mtu))
            }
        }
        if !peer.proberStarted {
            peer.proberStarted = true
            peer.prober.begin(now: now)
        }
        serviceProber(peer, now: now)
    }

    /// The new-handshake timer fired: data went out and nothing came back.
    func dataWentUnanswered(_ peer: Peer, now: Instant) {
        guard configuration.pathMTUDiscovery else { return }
        peer.prober.dataUnanswered(now: now)
        serviceProber(peer, now: now)
        if peer.prober.peerEchoes == false && peer.largeSentUnanswered { peer.blackHoleSuspected = true }
    }

    /// Sends the probes of a round the prober asks for, if the current session can send.
    func serviceProber(_ peer: Peer, now: Instant) {
        guard peer.prober.wantsRound, var keypair = peer.slots.current, let destination = peer.endpoint,
            peer.timers.keyUsableForSending(keyCreated: keypair.created, sendCounter: keypair.sendCounter, now: now)
        else { return }
        for i in 0..<peer.prober.probeCount {
            // As large as a data message carrying an IP packet of that size (in a frame, for tap).
            let size = peer.prober.size(at: i)
            let bodySize = size + linkHeaderLength
            let id = peer.prober.probeID(at: i)
            let counter = keypair.sendCounter
            let queued = outbox.enqueue(destination: destination, peer: peer.number) { buffer in
                PathProbe.seal(
                    .probe, id: id, size: size, bodySize: bodySize, into: &buffer, receiverIndex: keypair.remoteIndex,
                    counter: counter, key: keypair.sendKey)
                return true
            }
            guard queued else { break }
            keypair.sendCounter += 1
        }
        peer.slots.current = keypair
        peer.prober.roundSent(now: now)
    }

    /// A probe or echo: authenticated like data (and confirming a responder's session like it),
    /// then echoed or handed to the prober. Neither moves the endpoint nor touches the timers.
    func receiveProbe(
        _ datagram: inout PacketBuffer, receiverIndex: UInt32, from source: Endpoint, now: Instant
    ) -> DecapsulateResult {
        guard let number = indexTable[receiverIndex], let peer = peers[Int(number)] else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        guard let slot = peer.slots.slot(forLocalIndex: receiverIndex) else {
            return .drop(countUnattributed(.unknownReceiverIndex))
        }
        let result = peer.slots.withKeypair(slot) { keypair -> PathProbe.OpenResult in
            guard peer.timers.keyUsableForReceiving(keyCreated: keypair.created, now: now) else {
                return .drop(.keyExpired)
            }
            return PathProbe.open(&datagram, key: keypair.receiveKey, replay: &keypair.replay)
        }
        let body: PathProbe.Body
        switch result {
        case .drop(let reason): return drop(reason, peer: peer)
        case .ok(let opened): body = opened
        }
        if slot == .next { confirmSession(peer, now: now) }
        peer.lastAuthenticatedAt = now
        switch body.kind {
        case .echo where body.size == 0:
            // The echo of a liveness probe (Transport = auto).
            peer.selector?.echoReceived(id: body.id, over: source.carrier, now: now)
        case .echo:
            peer.selector?.received(over: source.carrier, now: now)
            peer.prober.echoReceived(id: body.id, size: body.size, now: now)
            serviceProber(peer, now: now)
        case .probe:
            sendEcho(body, to: source, for: peer, now: now)
        }
        return .consumed
    }

    private func sendEcho(_ probe: PathProbe.Body, to destination: Endpoint, for peer: Peer, now: Instant) {
        sendSmallProbe(.echo, id: probe.id, size: probe.size, to: destination, for: peer, now: now)
    }

    /// Seals a 16-byte-body probe or echo of `kind` on the current key into the outbox: an echo,
    /// or a liveness probe (size 0, Transport = auto).
    func sendSmallProbe(_ kind: PathProbe.Kind, id: UInt32, size: Int, to destination: Endpoint, for peer: Peer, now: Instant) {
        guard var keypair = peer.slots.current,
            peer.timers.keyUsableForSending(keyCreated: keypair.created, sendCounter: keypair.sendCounter, now: now)
        else { return }
        let counter = keypair.sendCounter
        let queued = outbox.enqueue(destination: destination, peer: peer.number) { buffer in
            PathProbe.seal(
                kind, id: id, size: size, bodySize: PathProbe.minimumBodySize, into: &buffer,
                receiverIndex: keypair.remoteIndex, counter: counter, key: keypair.sendKey)
            return true
        }
        guard queued else { return peer.count(.queueFull) }
        keypair.sendCounter += 1
        peer.slots.current = keypair
    }
}
