// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Testing
import VPNBasics
import VPNLinux

private let loopback6 = Endpoint(addressBytes: [UInt8](repeating: 0, count: 15) + [1], port: 0)
private let loopback4 = Endpoint(ipv4: 127, 0, 0, 1, port: 0)

/// Which sockets a loopback round trip uses.
enum UDPSetup: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case ipv4  // 127.0.0.1 → 127.0.0.1
    case ipv6  // [::1] → [::1]
    case dualStackToIPv4  // [::] sender → 127.0.0.1 receiver (mapped send)
    case ipv4ToDualStack  // 127.0.0.1 sender → [::] receiver (mapped source)
    var testDescription: String { rawValue }
}

/// Waits until `handle` is readable (or `timeout` passes); true when readable.
func waitReadable(_ handle: PollHandle, timeout: Duration = .seconds(5)) throws -> Bool {
    let poller = try EpollPoller(capacity: 4)
    try poller.register(handle, token: 7, events: .readable)
    let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 4)
    defer { events.deallocate() }
    return try poller.wait(into: events, timeout: timeout) > 0
}

@Suite struct UDPSocketTests {
    @Test(arguments: UDPSetup.allCases)
    func batchRoundTripOverLoopback(setup: UDPSetup) throws {
        let sender: UDPSocket
        let receiver: UDPSocket
        var destination: Endpoint
        switch setup {
        case .ipv4:
            sender = try UDPSocket(bindingTo: loopback4)
            receiver = try UDPSocket(bindingTo: loopback4)
            destination = receiver.localEndpoint
        case .ipv6:
            sender = try UDPSocket(bindingTo: loopback6)
            receiver = try UDPSocket(bindingTo: loopback6)
            destination = receiver.localEndpoint
        case .dualStackToIPv4:
            sender = try UDPSocket(port: 0)
            receiver = try UDPSocket(bindingTo: loopback4)
            destination = receiver.localEndpoint
        case .ipv4ToDualStack:
            sender = try UDPSocket(bindingTo: loopback4)
            receiver = try UDPSocket(port: 0)
            destination = Endpoint(ipv4: 127, 0, 0, 1, port: receiver.localEndpoint.port)
        }
        #expect(receiver.localEndpoint.port != 0)
        #expect(destination.isIPv4 == (setup != .ipv6))

        let count = 40
        let outgoing = TestBuffers(count: count)
        let destinations = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: count)
        defer { destinations.deallocate() }
        for i in 0..<count {
            let payload = (0..<(20 + i * 7)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            payload.withUnsafeBytes { outgoing.buffers[i].append(contentsOf: $0) }
            destinations[i] = destination
        }
        var sent = 0
        while sent < count {
            let n = try sender.send(
                UnsafeBufferPointer(rebasing: outgoing.buffers[sent...]), to: UnsafeBufferPointer(rebasing: destinations[sent...]))
            sent += n
            if n == 0 { usleep(1000) }
        }
        #expect(sender.sendCounters.socketRefused == 0)

        // The source every datagram must carry: the sender's port at 127.0.0.1 (mapped) or ::1.
        let senderPort = sender.localEndpoint.port
        let expectedSource = setup == .ipv6 ? Endpoint(address: loopback6.address, port: senderPort)
            : Endpoint(ipv4: 127, 0, 0, 1, port: senderPort)

        let incoming = TestBuffers(count: 16)
        let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 16)
        defer { sources.deallocate() }
        var received: [[UInt8]] = []
        var batches = 0
        while received.count < count {
            try #require(try waitReadable(receiver.pollHandle), "datagrams did not arrive")
            incoming.reset()
            let n = try receiver.receive(into: incoming.buffers, sources: sources)
            if n > 0 { batches += 1 }
            for i in 0..<n {
                #expect(sources[i] == expectedSource)
                #expect(incoming.buffers[i].start == TestBuffers.headroom)
                received.append(incoming.buffers[i].byteArray)
            }
        }
        #expect(received.count == count)
        for i in 0..<count { #expect(received[i] == outgoing.buffers[i].byteArray, "datagram \(i)") }
        #expect(batches < count, "recvmmsg should return several datagrams per call")
    }

    @Test func receiveReturnsZeroWhenNothingWaits() throws {
        let socket = try UDPSocket(bindingTo: loopback4)
        let buffers = TestBuffers(count: 4)
        let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 4)
        defer { sources.deallocate() }
        #expect(try socket.receive(into: buffers.buffers, sources: sources) == 0)
    }

    @Test func ipv6DestinationOnIPv4SocketIsDroppedAndCounted() throws {
        let sender = try UDPSocket(bindingTo: loopback4)
        let receiver = try UDPSocket(bindingTo: loopback4)
        let buffers = TestBuffers(count: 3)
        for i in 0..<3 { [UInt8(i), 1, 2].withUnsafeBytes { buffers.buffers[i].append(contentsOf: $0) } }
        let v6 = Endpoint(address: loopback6.address, port: 9)
        let destinations = [receiver.localEndpoint, v6, receiver.localEndpoint]
        let consumed = try destinations.withUnsafeBufferPointer { try sender.send(UnsafeBufferPointer(buffers.buffers), to: $0) }
        #expect(consumed == 3)
        #expect(sender.sendCounters.socketRefused == 1)
        let incoming = TestBuffers(count: 4)
        let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 4)
        defer { sources.deallocate() }
        var got: [UInt8] = []
        while got.count < 2 {
            try #require(try waitReadable(receiver.pollHandle))
            incoming.reset()
            let n = try receiver.receive(into: incoming.buffers, sources: sources)
            for i in 0..<n { got.append(incoming.buffers[i].byteArray[0]) }
        }
        #expect(got == [0, 2])
    }

    @Test func bindingAPortInUseExplainsItself() throws {
        let first = try UDPSocket(bindingTo: loopback4)
        let port = first.localEndpoint.port
        do {
            _ = try UDPSocket(bindingTo: first.localEndpoint)
            Issue.record("second bind succeeded")
        } catch {
            #expect(error.errno == EADDRINUSE)
            #expect(
                error.description
                    == "bind 127.0.0.1:\(port): address already in use (EADDRINUSE); another process (vpnd or WireGuard?) "
                    + "uses this port: pick another ListenPort or stop it")
        }
    }

    @Test func raisesSocketBuffers() throws {
        let socket = try UDPSocket(bindingTo: loopback4, bufferSize: 1 << 20)
        // Linux reports twice the value set; without CAP_NET_ADMIN it is capped by rmem_max.
        #expect(socket.receiveBufferSize >= (getuid() == 0 ? 2 << 20 : 1))
    }
}
