// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Testing
import VPNBasics
import VPNLinux

/// Slot size for offload buffers: 64 KiB of data plus headroom.
let offloadSlotSize = 65536 + 128

/// The datagrams `0..<count`, each `size` bytes with contents that tell them apart.
func testSegments(count: Int, size: Int, seed: Int = 0) -> [[UInt8]] {
    (0..<count).map { i in (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i &* 131 &+ seed) } }
}

/// Splits `bytes` into segments of `segmentSize` bytes (the last one shorter).
func split(_ bytes: [UInt8], segmentSize: Int) -> [[UInt8]] {
    guard segmentSize > 0, !bytes.isEmpty else { return [bytes] }
    return stride(from: 0, to: bytes.count, by: segmentSize).map { Array(bytes[$0..<min($0 + segmentSize, bytes.count)]) }
}

/// Receives until `expectedBytes` payload bytes arrived; returns (buffer bytes, segment size) pairs.
func receiveCoalesced(_ socket: UDPSocket, expectedBytes: Int) throws -> [([UInt8], Int, Endpoint)] {
    let incoming = TestBuffers(count: 8, slotSize: offloadSlotSize)
    let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 8)
    let sizes = UnsafeMutableBufferPointer<Int>.allocate(capacity: 8)
    defer {
        sources.deallocate()
        sizes.deallocate()
    }
    var got: [([UInt8], Int, Endpoint)] = []
    var total = 0
    while total < expectedBytes {
        try #require(try waitReadable(socket.pollHandle), "datagrams did not arrive (\(total) of \(expectedBytes) bytes)")
        incoming.reset()
        let n = try socket.receive(into: incoming.buffers, sources: sources, segmentSizes: sizes)
        for i in 0..<n {
            got.append((incoming.buffers[i].byteArray, sizes[i], sources[i]))
            total += incoming.buffers[i].count
        }
    }
    return got
}

/// Receives `count` plain datagrams.
func receivePlain(_ socket: UDPSocket, count: Int, slotSize: Int = 2048) throws -> [[UInt8]] {
    let incoming = TestBuffers(count: 16, slotSize: slotSize)
    let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 16)
    defer { sources.deallocate() }
    var got: [[UInt8]] = []
    while got.count < count {
        try #require(try waitReadable(socket.pollHandle), "datagrams did not arrive (\(got.count) of \(count))")
        incoming.reset()
        let n = try socket.receive(into: incoming.buffers, sources: sources)
        for i in 0..<n { got.append(incoming.buffers[i].byteArray) }
    }
    return got
}

@Suite struct OffloadUDPTests {
    static let gsoOnly = LinuxOffloadOptions(udpGSO: true)
    static let groOnly = LinuxOffloadOptions(udpGRO: true)

    /// One buffer holding `segments` back to back.
    private func superDatagram(_ segments: [[UInt8]]) -> TestBuffers {
        let buffers = TestBuffers(count: 1, slotSize: offloadSlotSize)
        segments.joined().map { $0 }.withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
        return buffers
    }

    @Test(arguments: [false, true])
    func gsoSendReachesAPlainReceiverAsSingleDatagrams(ipv6: Bool) throws {
        let local = ipv6 ? Endpoint(addressBytes: [UInt8](repeating: 0, count: 15) + [1], port: 0)
            : Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let sender = try UDPSocket(bindingTo: local, offloads: Self.gsoOnly)
        let receiver = try UDPSocket(bindingTo: local)
        #expect(sender.udpGSOActive)
        #expect(!sender.udpGROActive)
        #expect(sender.offloadSummary == "udp offloads: gso")
        #expect(receiver.offloadSummary == "udp offloads: none")

        let segments = testSegments(count: 20, size: 1200)
        let out = superDatagram(segments)
        #expect(try sender.sendSegmented(out.buffers[0], segmentSize: 1200, to: receiver.localEndpoint))
        #expect(sender.udpGSOActive, "the kernel refused GSO on loopback")
        #expect(sender.sendCounters.gsoFallbacks == 0)
        #expect(sender.sendCounters.socketRefused == 0)
        let got = try receivePlain(receiver, count: 20)
        #expect(got == segments)
    }

    @Test func gsoSendReachesAGROReceiverCoalesced() throws {
        let local = Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let sender = try UDPSocket(bindingTo: local, offloads: .enabled)
        let receiver = try UDPSocket(bindingTo: local, offloads: Self.groOnly)
        #expect(receiver.udpGROActive)
        #expect(receiver.offloadSummary == "udp offloads: gro")
        #expect(sender.offloadSummary == "udp offloads: gso gro")

        // 20 x 1200 and a shorter tail segment.
        let segments = testSegments(count: 20, size: 1200) + [Array(repeating: 0xAB, count: 300)]
        let out = superDatagram(segments)
        #expect(try sender.sendSegmented(out.buffers[0], segmentSize: 1200, to: receiver.localEndpoint))
        let got = try receiveCoalesced(receiver, expectedBytes: 20 * 1200 + 300)
        #expect(got.count < segments.count, "nothing was coalesced: \(got.count) buffers")
        var rebuilt: [[UInt8]] = []
        for (bytes, segmentSize, source) in got {
            #expect(source == Endpoint(ipv4: 127, 0, 0, 1, port: sender.localEndpoint.port))
            if bytes.count > 1200 { #expect(segmentSize == 1200) }
            rebuilt += split(bytes, segmentSize: segmentSize)
        }
        #expect(rebuilt == segments)
    }

    @Test func groReceiverReportsPlainDatagramsWithTheirLength() throws {
        let local = Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let sender = try UDPSocket(bindingTo: local)
        let receiver = try UDPSocket(bindingTo: local, offloads: Self.groOnly)
        let buffers = TestBuffers(count: 1)
        [UInt8]([9, 8, 7]).withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
        let sent = try [receiver.localEndpoint].withUnsafeBufferPointer {
            try sender.send(UnsafeBufferPointer(buffers.buffers), to: $0)
        }
        #expect(sent == 1)
        let got = try receiveCoalesced(receiver, expectedBytes: 3)
        #expect(got.count == 1)
        #expect(got.first?.0 == [9, 8, 7])
        #expect(got.first?.1 == 3)
    }

    @Test(arguments: [true, false])
    func batchedSegmentedSendsKeepEveryDatagramInOrder(gso: Bool) throws {
        let local = Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let sender = try UDPSocket(bindingTo: local, offloads: gso ? Self.gsoOnly : .disabled)
        let receiver = try UDPSocket(bindingTo: local)
        #expect(sender.udpGSOActive == gso)
        let messages: [([[UInt8]], Int)] = [
            (testSegments(count: 5, size: 1000, seed: 1), 1000),
            (testSegments(count: 3, size: 500, seed: 2) + [Array(repeating: 5, count: 100)], 500),
            ([Array(repeating: 6, count: 77)], 1400),  // one datagram: the size exceeds the length
            (testSegments(count: 64, size: 1000, seed: 3), 1000),  // the segment limit
        ]
        let out = TestBuffers(count: messages.count, slotSize: offloadSlotSize)
        for (i, (segments, _)) in messages.enumerated() {
            Array(segments.joined()).withUnsafeBytes { out.buffers[i].append(contentsOf: $0) }
        }
        let sizes = messages.map(\.1)
        let destinations = [Endpoint](repeating: receiver.localEndpoint, count: messages.count)
        let consumed = try sizes.withUnsafeBufferPointer { sizes in
            try destinations.withUnsafeBufferPointer { destinations in
                try sender.sendSegmented(UnsafeBufferPointer(out.buffers), segmentSizes: sizes, to: destinations)
            }
        }
        #expect(consumed == messages.count)
        #expect(sender.sendCounters.socketRefused == 0)
        let expected = messages.flatMap(\.0)
        #expect(try receivePlain(receiver, count: expected.count) == expected)
    }

    @Test func segmentLimitsAreErrorsWithAHint() throws {
        let sender = try UDPSocket(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0), offloads: Self.gsoOnly)
        let out = superDatagram(testSegments(count: 65, size: 100))
        do {
            _ = try sender.sendSegmented(out.buffers[0], segmentSize: 100, to: Endpoint(ipv4: 127, 0, 0, 1, port: 9))
            Issue.record("65 segments were accepted")
        } catch {
            #expect(error.description.contains("6500 bytes in segments of 100 exceed the kernel's limit"), "\(error)")
            #expect(error.description.contains("send at most 64 segments and 65507 bytes at once"), "\(error)")
        }
        do {
            _ = try sender.sendSegmented(out.buffers[0], segmentSize: 0, to: Endpoint(ipv4: 127, 0, 0, 1, port: 9))
            Issue.record("segment size 0 was accepted")
        } catch {
            #expect(error.description.contains("segment size 0 is not positive"), "\(error)")
        }
    }

    /// A message of exactly the byte limit goes out whole (loopback's MTU allows 9000-byte segments).
    /// The fallback to single datagrams is tested through a tun without checksum offload, in
    /// ``OffloadTunTests``.
    @Test func messageAtTheByteLimitIsSent() throws {
        let local = Endpoint(ipv4: 127, 0, 0, 1, port: 0)
        let sender = try UDPSocket(bindingTo: local, offloads: Self.gsoOnly)
        let receiver = try UDPSocket(bindingTo: local, bufferSize: 8 << 20)
        let segments = testSegments(count: 7, size: 9000) + [Array(repeating: 1, count: 2507)]
        let out = superDatagram(segments)
        #expect(out.buffers[0].count == UDPSocket.maximumSegmentedBytes)
        #expect(try sender.sendSegmented(out.buffers[0], segmentSize: 9000, to: receiver.localEndpoint))
        let got = try receivePlain(receiver, count: segments.count, slotSize: 9100)
        #expect(got.map(\.count) == segments.map(\.count))
        #expect(got == segments)
    }
}
