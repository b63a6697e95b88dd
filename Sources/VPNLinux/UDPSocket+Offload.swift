// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

extension UDPSocket {
    /// The most datagrams one segmented send carries (the kernel's `UDP_MAX_SEGMENTS` on every
    /// kernel since 4.18).
    public static let maximumSegments = Int(VPND_UDP_MAX_SEGMENTS)
    /// The most payload bytes one segmented send carries (65535 − 20 − 8).
    public static let maximumSegmentedBytes = Int(VPND_UDP_GSO_MAX_BYTES)
    /// The tailroom each buffer needs for ``receive(into:sources:segmentSizes:)`` on a socket with
    /// ``udpGROActive``: the kernel coalesces up to 64 KiB and cuts a longer run to a short buffer.
    public static let maximumCoalescedLength = 65535

    /// Whether segmented sends go to the kernel whole (`UDP_SEGMENT`); false when not asked for,
    /// refused at start-up, or turned off after the kernel refused one (then
    /// ``sendSegmented(_:segmentSize:to:)`` sends single datagrams). Read it from the sending thread.
    public var udpGSOActive: Bool { sendScratch.gsoEnabled }

    /// The start-up log line, e.g. "udp offloads: gso gro" or
    /// "udp offloads: gso (gro refused: setsockopt(UDP_GRO): ...)". Read it from the sending thread.
    public var offloadSummary: String {
        var names: [String] = []
        if udpGSOActive { names.append("gso") }
        if udpGROActive { names.append("gro") }
        var notes: [String] = []
        if !offloadRefusal.isEmpty { notes.append(offloadRefusal) }
        if !sendScratch.gsoDisabledReason.isEmpty { notes.append(sendScratch.gsoDisabledReason) }
        let head = "udp offloads: \(names.isEmpty ? "none" : names.joined(separator: " "))"
        return notes.isEmpty ? head : "\(head) (\(notes.joined(separator: "; ")))"
    }

    /// Sends `buffer` as datagrams of `segmentSize` bytes each (the last one shorter) to
    /// `destination`, with one syscall when ``udpGSOActive``.
    ///
    /// The bytes of `buffer` are the datagrams back to back. Without GSO (or when the kernel refuses
    /// this send whole: `EMSGSIZE`, or `EINVAL` before Linux 6.x, when a segment exceeds the route's
    /// MTU; `EIO` on kernels that need checksum offload on the route's device) they go out as single
    /// datagrams with `sendmmsg`, which the kernel may fragment. An `EIO` turns GSO off for good.
    ///
    /// - Returns: true when consumed: sent, or dropped because the kernel refused the destination
    ///   (counted in ``sendCounters`` as `socketRefused`); false when the socket would block and
    ///   nothing was sent. When single datagrams stop part-way on a full socket, the rest are
    ///   dropped and counted as `socketFull`; a message the kernel refused whole counts in `gsoFallbacks`.
    /// - Throws: ``IOError`` when the socket failed, or when `buffer` breaks the limits:
    ///   `segmentSize` ≥ 1, at most ``maximumSegments`` segments, at most ``maximumSegmentedBytes``.
    ///
    /// Allocates nothing. The corresponding C call is `sendmmsg(2)` with a
    /// `cmsg(SOL_UDP, UDP_SEGMENT)`.
    public func sendSegmented(_ buffer: PacketBuffer, segmentSize: Int, to destination: Endpoint) throws(IOError)
        -> Bool
    {
        try checkSegmentation(count: buffer.count, segmentSize: segmentSize)
        let s = sendScratch
        s.bases[0] = buffer.bytes.baseAddress
        s.lengths[0] = buffer.count
        s.segmentSizes[0] = UInt16(segmentSize < buffer.count ? segmentSize : 0)
        s.endpoints[0] = vpnd_endpoint(destination)
        return try sendPreparedSegmented(count: 1) == 1
    }

    /// Sends several segmented messages with one `sendmmsg`: `buffers[i]` cut into datagrams of
    /// `segmentSizes[i]` bytes, to `destinations[i]`, each message with its own `UDP_SEGMENT`.
    ///
    /// Handles `min(buffers.count, segmentSizes.count, destinations.count, batchCapacity)`
    /// messages. Refusals and fallbacks are as in ``sendSegmented(_:segmentSize:to:)``.
    ///
    /// - Returns: how many messages were consumed; fewer than asked when the socket would block.
    /// - Throws: ``IOError`` when the socket failed before anything was sent, or a message breaks
    ///   the limits (nothing is sent then).
    ///
    /// Allocates nothing. The corresponding C call is `sendmmsg(2)` with a
    /// `cmsg(SOL_UDP, UDP_SEGMENT)` per message.
    public func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) -> Int {
        let count = min(min(buffers.count, destinations.count), min(segmentSizes.count, batchCapacity))
        if count == 0 { return 0 }
        let s = sendScratch
        for i in 0..<count {
            let size = segmentSizes[i]
            let length = buffers[i].count
            try checkSegmentation(count: length, segmentSize: size)
            s.bases[i] = buffers[i].bytes.baseAddress
            s.lengths[i] = length
            s.segmentSizes[i] = UInt16(size < length ? size : 0)
            s.endpoints[i] = vpnd_endpoint(destinations[i])
        }
        return try sendPreparedSegmented(count: count)
    }

    /// Receives up to `min(buffers.count, sources.count, segmentSizes.count, batchCapacity)`
    /// buffers, each one datagram or, with ``udpGROActive``, a run of datagrams from one sender
    /// that the kernel coalesced.
    ///
    /// `segmentSizes[i]` says how to split `buffers[i]` back into its datagrams: each is
    /// `segmentSizes[i]` bytes, the last one as long as what is left (one datagram when the size
    /// is the buffer's whole length; 0 only for an empty datagram). With GRO each buffer needs
    /// ``maximumCoalescedLength`` bytes of tailroom (a precondition).
    ///
    /// - Returns: how many buffers were filled; 0 when none is waiting.
    ///
    /// Allocates nothing. The corresponding C call is `recvmmsg(2)` reading `cmsg(SOL_UDP, UDP_GRO)`.
    public func receive(
        into buffers: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeMutableBufferPointer<Endpoint>,
        segmentSizes: UnsafeMutableBufferPointer<Int>
    ) throws(IOError) -> Int {
        let count = min(min(buffers.count, sources.count), min(segmentSizes.count, batchCapacity))
        if count == 0 { return 0 }
        let s = receiveScratch
        for i in 0..<count {
            let tail = buffers[i].tail
            if udpGROActive {
                precondition(
                    tail.count >= UDPSocket.maximumCoalescedLength,
                    "UDPSocket with GRO needs receive buffers with maximumCoalescedLength bytes of tailroom")
            }
            s.bases[i] = tail.baseAddress
            s.lengths[i] = tail.count
        }
        let received = Int(
            vpnd_udp_recv_batch_gro(
                fileDescriptor, s.batch, s.bases, s.lengths, UInt32(count), s.outLengths, s.endpoints,
                s.segmentSizes))
        if received < 0 {
            throw .system("recvmmsg", subject: localEndpoint.description, errno: Errno(rawValue: Int32(-received)))
        }
        for i in 0..<received {
            let length = s.outLengths[i]
            buffers[i].didWrite(length)
            sources[i] = Endpoint(s.endpoints[i])
            let segment = Int(s.segmentSizes[i])
            segmentSizes[i] = segment > 0 && segment < length ? segment : length
        }
        return received
    }

    /// Throws when a segmented message breaks the kernel's limits.
    private func checkSegmentation(count: Int, segmentSize: Int) throws(IOError) {
        guard segmentSize >= 1 else {
            throw .invalid(
                "sendmsg(UDP_SEGMENT)", subject: localEndpoint.description,
                reason: "segment size \(segmentSize) is not positive", hint: "pass the datagram size")
        }
        guard count <= UDPSocket.maximumSegmentedBytes,
            count <= segmentSize * UDPSocket.maximumSegments
        else {
            throw .invalid(
                "sendmsg(UDP_SEGMENT)", subject: localEndpoint.description,
                reason: "\(count) bytes in segments of \(segmentSize) exceed the kernel's limit",
                hint: "send at most \(UDPSocket.maximumSegments) segments and \(UDPSocket.maximumSegmentedBytes) bytes at once")
        }
    }

    /// Sends the `count` messages prepared in the send scratch; returns how many were consumed.
    private func sendPreparedSegmented(count: Int) throws(IOError) -> Int {
        let s = sendScratch
        var done = 0
        while done < count {
            if !s.gsoEnabled {
                while done < count {
                    guard try sendAsSingles(done) else { return done }
                    done += 1
                }
                return done
            }
            var dropped: UInt32 = 0
            var gsoError: Int32 = 0
            let sent = Int(
                vpnd_udp_send_gso_batch(
                    fileDescriptor, s.batch, family, s.constBases + done, s.lengths + done, s.segmentSizes + done,
                    s.endpoints + done, UInt32(count - done), &dropped, &gsoError))
            s.refused &+= UInt64(dropped)
            if sent < 0 {
                if done > 0 { return done }
                throw .system("sendmmsg", subject: localEndpoint.description, errno: Errno(rawValue: Int32(-sent)))
            }
            done += sent
            if gsoError == 0 { return done }  // all sent, or the socket would block
            // The kernel refused message `done` whole: send it as single datagrams.
            s.gsoFallbacks &+= 1
            if gsoError == EIO {
                s.gsoEnabled = false
                s.gsoDisabledReason = "gso turned off: sendmmsg(UDP_SEGMENT): \(IOError.reason(EIO))"
            }
            guard try sendAsSingles(done) else { return done }
            done += 1
        }
        return done
    }

    /// Sends prepared message `index` as single datagrams. Returns false when the socket would block
    /// before the first one; a run cut short later drops (and counts) the rest.
    private func sendAsSingles(_ index: Int) throws(IOError) -> Bool {
        let s = sendScratch
        guard let base = s.bases[index] else { return true }
        let length = s.lengths[index]
        let size = s.segmentSizes[index] == 0 ? max(length, 1) : Int(s.segmentSizes[index])
        let limit = min(batchCapacity, UDPSocket.maximumSegments)
        var offset = 0
        var first = true
        while true {
            var parts = 0
            repeat {  // at least one part, so an empty message is one empty datagram
                let part = min(size, length - offset)
                s.splitBases[parts] = base + offset
                s.splitLengths[parts] = part
                s.splitEndpoints[parts] = s.endpoints[index]
                parts += 1
                offset += part
            } while offset < length && parts < limit
            var dropped: UInt32 = 0
            let sent = Int(
                vpnd_udp_send_batch(
                    fileDescriptor, s.batch, family,
                    UnsafeRawPointer(s.splitBases).assumingMemoryBound(to: UnsafeRawPointer?.self), s.splitLengths,
                    s.splitEndpoints, UInt32(parts), &dropped))
            s.refused &+= UInt64(dropped)
            if sent < 0 {
                if !first { return true }
                throw .system("sendmmsg", subject: localEndpoint.description, errno: Errno(rawValue: Int32(-sent)))
            }
            if sent < parts {
                if first && sent == 0 { return false }
                // Cut short on a full socket: drop the rest of this message.
                s.cutShort &+= UInt64(parts - sent + (length - offset + size - 1) / size)
                return true
            }
            if offset >= length { return true }
            first = false
        }
    }
}
