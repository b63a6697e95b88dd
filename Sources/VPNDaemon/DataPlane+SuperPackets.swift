// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

extension DataPlane {
    // MARK: - Tun → network with offloads

    /// Tun → network with a virtio-net header: read super-packets, split each into a region at a
    /// fixed stride, seal the segments in place, and send each region as its ``GSOSendPlan``
    /// says: UDP GSO sends within the kernel's limits, or single datagrams when a segment went
    /// elsewhere or was staged, or the transport cannot send segmented runs (TCP).
    func readSuperPackets(now: Instant, offload: OffloadBuffers) throws(IOError) {
        let segmented = transport.supportsSegmentedSend
        let deferSeal = cryptoPool != nil
        for _ in 0..<4 {
            for i in 0..<OffloadBuffers.reads { offload.reads[i].reset(headroom: 0) }
            let count = try device.read(into: offload.reads)
            if count == 0 { return }
            var gsoCount = 0
            var singles = 0
            for r in 0..<count {
                let frame = UnsafeRawBufferPointer(offload.reads[r].bytes)
                guard let header = VirtioNetHeader(parsing: frame) else {
                    tunnel.countDrop(.malformedOffload)
                    continue
                }
                // An IP packet (tun) or an Ethernet frame (tap).
                let packet = UnsafeRawBufferPointer(rebasing: frame[VirtioNetHeader.size...])
                let stride: Int
                switch offload.stride(for: packet, header: header) {
                case .stride(let value): stride = value
                case .drop(let reason):
                    tunnel.countDrop(reason)
                    continue
                }
                let region = offload.region(r)
                let slots = GSOSendPlan.segmentSlots(
                    packetLength: packet.count, header: header, limit: OffloadBuffers.segmentsPerRead)
                for i in 0..<slots {
                    offload.segments[i] = PacketBuffer(base: region + i * stride, capacity: stride, headroom: headroom)
                }
                let produced: Int
                switch GSOSplitter.split(
                    packet, header: header, linkHeaderLength: offload.linkHeaderLength,
                    into: UnsafeMutableBufferPointer(rebasing: offload.segments[0..<slots]))
                {
                case .segments(let n): produced = n
                case .drop(let reason):
                    tunnel.countDrop(reason)
                    continue
                }
                // Seal each segment where it lies; the plan checks that they stay one contiguous run.
                var plan = GSOSendPlan(stride: stride, segments: produced, segmentedSends: segmented)
                for i in 0..<produced {
                    offload.segmentSent[i] = false
                    switch tunnel.encapsulate(&offload.segments[i], now: now, deferSeal: deferSeal) {
                    case .send(let endpoint):
                        offload.segmentSent[i] = true
                        offload.segmentDestinations[i] = endpoint
                        plan.sealed(
                            i, offset: region.distance(to: offload.segments[i].base + offload.segments[i].start),
                            length: offload.segments[i].count, to: endpoint)
                    case .reply:
                        // The segment became an ICMP error for its sender: back into the device,
                        // behind a plain virtio-net header.
                        plan.notSent()
                        if offload.segments[i].headroom >= VirtioNetHeader.size {
                            let header = offload.segments[i].prepend(VirtioNetHeader.size)
                            VirtioNetHeader().write(to: header.baseAddress!)
                            write(offload.segments[i], now: now)
                        }
                    case .staged, .drop:
                        plan.notSent()
                    }
                }
                if let destination = plan.segmentedDestination {
                    for send in plan.sends(lastLength: offload.segments[produced - 1].count) {
                        var run = PacketBuffer(base: region + send.offset, capacity: send.length, headroom: 0)
                        run.didWrite(send.length)
                        offload.gsoBuffers[gsoCount] = run
                        offload.gsoSizes[gsoCount] = stride
                        offload.gsoDestinations[gsoCount] = destination
                        gsoCount += 1
                    }
                    continue
                }
                for i in 0..<produced where offload.segmentSent[i] {
                    if singles == batchSize {
                        try sendPending(singles)
                        singles = 0
                    }
                    sendBuffers[singles] = offload.segments[i]
                    sendEndpoints[singles] = offload.segmentDestinations[i]
                    singles += 1
                }
            }
            if singles > 0 { try sendPending(singles) }
            runDeferredSeals()
            if gsoCount > 0 {
                try transport.sendSegmented(
                    UnsafeBufferPointer(rebasing: offload.gsoBuffers[0..<gsoCount]),
                    segmentSizes: UnsafeBufferPointer(rebasing: offload.gsoSizes[0..<gsoCount]),
                    to: UnsafeBufferPointer(rebasing: offload.gsoDestinations[0..<gsoCount]))
            }
            try flushOutbox()
            if count < OffloadBuffers.reads { return }
        }
    }

    private func sendPending(_ count: Int) throws(IOError) {
        runDeferredSeals()  // every segment laid out so far, these among them
        try transport.send(
            UnsafeBufferPointer(rebasing: sendBuffers[0..<count]),
            to: UnsafeBufferPointer(rebasing: sendEndpoints[0..<count]))
    }
}
