// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

extension DataPlane {
    // MARK: - Network → tun

    /// Reads what `event` made ready on the transport, batch by batch: each message is
    /// decapsulated, the batch's packets written (coalesced) before the transport reuses its
    /// buffers, and the transport told what the batch held.
    func receiveFromTransport(_ event: PollEvent, now: Instant) throws(IOError) {
        while true {
            let batch = try transport.receive(event, now: now)
            handleTransportEvents(now: now)
            var verdict = BatchVerdict.unauthenticated
            var opening = 0
            for i in 0..<batch.messages.count {
                let delivery: Delivery
                if cryptoPool != nil {
                    // The packet threads open the data messages; the rest is handled at once.
                    let message = batch.messages[i]
                    let isData = message.count > 0 && message.bytes[0] == MessageType.transportData.rawValue
                    if isData && !tunnel.crypto.hasRoom {
                        // Never a message ahead of those waiting: finish them first.
                        finishOpens(batch, opening, verdict: &verdict, now: now)
                        opening = 0
                    }
                    guard let result = tunnel.beginDecapsulate(&batch.messages[i], from: batch.sources[i], now: now) else {
                        openingMessages[opening] = i
                        opening += 1
                        continue
                    }
                    delivery = deliver(&batch.messages[i], result, isData: isData, now: now)
                } else {
                    delivery = deliver(&batch.messages[i], from: batch.sources[i], now: now)
                }
                switch delivery {
                case .authenticated: verdict = .authenticated
                case .other: break
                case .malformed(let reason): if batch.stream { verdict = .malformed(reason) }
                }
                // Nothing after a malformed message on a stream is delivered.
                if case .malformed = verdict { break }
            }
            if opening > 0 { finishOpens(batch, opening, verdict: &verdict, now: now) }
            writePending(now: now)
            transport.finishBatch(verdict)
            if !batch.more { break }
        }
        handleTransportEvents(now: now)
    }

    /// Runs the batch's `count` opens on the packet threads, then finishes each in arrival order
    /// (``openingMessages`` says which message each job is) and empties the crypto batch.
    private func finishOpens(_ batch: ReceivedBatch, _ count: Int, verdict: inout BatchVerdict, now: Instant) {
        cryptoPool!.run(tunnel.crypto)
        for job in 0..<count {
            let i = openingMessages[job]
            let result = tunnel.finishDecapsulate(job: job, &batch.messages[i], from: batch.sources[i], now: now)
            if case .authenticated = deliver(&batch.messages[i], result, isData: true, now: now) {
                if case .malformed = verdict {} else { verdict = .authenticated }
            }
        }
        tunnel.crypto.reset()
    }

    /// Acts on what the transport saw.
    func handleTransportEvents(now: Instant) {
        while let event = transport.nextEvent() {
            switch event {
            case .connected(let remote):
                // A new TCP connection: the session goes on over it, unless the peer turns out
                // to have lost its keys.
                tunnel.transportConnected(remote, now: now)
            case .invalidStream(_, let reason):
                // Counted like a bad UDP datagram, so `vpnd show` sees hostile streams too.
                tunnel.countDrop(reason)
            case .pathMTU(let destination, let mtu):
                tunnel.pathMTUReported(destination: destination, outerMTU: mtu, now: now)
            case .streamClosed(let remote):
                tunnel.connectionClosed(remote, now: now)
            }
        }
    }

    /// What one received message turned out to be.
    enum Delivery {
        /// A transport-data message (a keepalive included) that a session opened.
        case authenticated
        /// Anything else the tunnel took or dropped.
        case other
        /// Not a well-formed message (truncated, oversized, unknown type): over a stream, the
        /// connection is closed.
        case malformed(DropReason)
    }

    /// Decapsulates one received message and writes (or holds) what it carries. Handshake
    /// messages never authenticate here, whatever their outcome: a connection that completes a
    /// handshake proves itself with the keepalive or data that follows at once.
    func deliver(_ datagram: inout PacketBuffer, from source: Endpoint, now: Instant) -> Delivery {
        // The type byte, read before decapsulation moves the buffer's start past the header.
        let isData = datagram.count > 0 && datagram.bytes[0] == MessageType.transportData.rawValue
        let result = tunnel.decapsulate(&datagram, from: source, now: now)
        return deliver(&datagram, result, isData: isData, now: now)
    }

    /// Writes (or holds) what `result` says `datagram` now carries.
    func deliver(_ datagram: inout PacketBuffer, _ result: DecapsulateResult, isData: Bool, now: Instant) -> Delivery {
        // A round of handshakes can fill the outbox (256 frames) before the round ends: send what
        // is queued now, so that the next reply finds room.
        if tunnel.outbox.isFull { flushOutboxDeferringErrors() }
        switch result {
        case .deliver:
            if offload == nil {
                write(datagram, now: now)
                return .authenticated
            }
            // Held until the end of the batch, where TCP segments of a flow are coalesced.
            if pendingCount == OffloadBuffers.maximumPendingWrites { writePending(now: now) }
            pendingWrites[pendingCount] = datagram
            pendingCount += 1
            return .authenticated
        case .consumed:
            return isData ? .authenticated : .other
        case .drop(let reason):
            // A drop is already counted by the tunnel (per peer where one is known).
            switch reason {
            case .truncated, .oversized, .unknownType: return .malformed(reason)
            default: return .other
            }
        }
    }

    func flushOutboxDeferringErrors() {
        do throws(IOError) {
            try flushOutbox()
        } catch {
            if deferredSendError == nil { deferredSendError = error }
        }
    }

    func write(_ packet: PacketBuffer, now: Instant) {
        do throws(IOError) {
            if try !device.write(packet) { tunnel.countDrop(.queueFull) }
        } catch {
            dropLog.log(logger, now: now, "writing to \(device.name) failed: \(error)")
        }
    }

    /// Writes the packets held back during a receive batch: coalesced when the device takes
    /// virtio-net super-packets.
    func writePending(now: Instant) {
        guard pendingCount > 0, let offload else { return }
        let packets = UnsafeMutableBufferPointer(rebasing: pendingWrites[0..<pendingCount])
        pendingCount = 0
        offload.resetSuperBuffers()
        let result = offload.coalescer.coalesce(packets, superBuffers: offload.superBuffers, into: offload.results)
        for i in 0..<result.writeCount { write(offload.results[i], now: now) }
    }
}
