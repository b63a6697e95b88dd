// SPDX-License-Identifier: MIT
import Glibc
import Testing
import VPNBasics
import VPNLinux

@Suite struct TCPTests {
    private static let loopback4 = Endpoint(ipv4: 127, 0, 0, 1, port: 0)

    private func waitFor(_ events: PollEvents, on handle: PollHandle) throws -> PollEvents {
        let poller = try EpollPoller(capacity: 2)
        try poller.register(handle, token: 1, events: events)
        let out = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 2)
        defer { out.deallocate() }
        let n = try poller.wait(into: out, timeout: .seconds(5))
        try #require(n == 1, "timed out waiting for \(events)")
        #expect(out[0].token == 1)
        return out[0].events
    }

    @Test func connectAcceptWriteReadClose() throws {
        let listener = try TCPListener(bindingTo: Self.loopback4)
        #expect(listener.localEndpoint.port != 0)
        #expect(try listener.accept() == nil)

        let client = try TCPConnection.connect(to: listener.localEndpoint)
        _ = try waitFor(.writable, on: client.pollHandle)
        #expect(try client.finishConnecting())
        #expect(client.isConnected)

        _ = try waitFor(.readable, on: listener.pollHandle)
        let server = try #require(try listener.acceptConnection())
        #expect(server.remoteEndpoint.port == localPort(of: client.pollHandle.rawValue))
        #expect(server.remoteEndpoint.isIPv4)

        let message: [UInt8] = Array("hello over tcp".utf8)
        let written = try message.withUnsafeBytes { try client.write($0) }
        #expect(written == message.count)

        var buffer = [UInt8](repeating: 0, count: 64)
        _ = try waitFor(.readable, on: server.pollHandle)
        let n = try buffer.withUnsafeMutableBytes { try server.read(into: $0) }
        #expect(n == message.count)
        #expect(Array(buffer[0..<message.count]) == message)
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == nil)

        client.close()
        client.close()  // idempotent
        #expect(throws: IOError.self) { try buffer.withUnsafeMutableBytes { try client.read(into: $0) } }
        _ = try waitFor(.readable, on: server.pollHandle)
        #expect(try buffer.withUnsafeMutableBytes { try server.read(into: $0) } == 0)
    }

    @Test func dialerConnectsThroughTheSeam() throws {
        let listener = try TCPListener(bindingTo: Endpoint(address: (0, 0), port: 0))  // dual-stack [::]
        let dialer: any StreamDialer = TCPDialer()
        let connection = try dialer.connect(to: Endpoint(ipv4: 127, 0, 0, 1, port: listener.localEndpoint.port))
        _ = try waitFor(.writable, on: connection.pollHandle)
        #expect(try connection.finishConnecting())
        _ = try waitFor(.readable, on: listener.pollHandle)
        let accepted = try #require(try listener.accept())
        #expect(accepted.remoteEndpoint.isIPv4, "an IPv4 peer on a dual-stack listener appears IPv4-mapped")
    }

    @Test func refusedConnectionIsReported() throws {
        let port: UInt16
        do {
            let probe = try TCPListener(bindingTo: Self.loopback4)
            port = probe.localEndpoint.port
        }  // closed again: nothing listens on `port` now
        do {
            let connection = try TCPConnection.connect(to: Endpoint(ipv4: 127, 0, 0, 1, port: port))
            _ = try waitFor(.writable, on: connection.pollHandle)
            _ = try connection.finishConnecting()
            Issue.record("connect to a closed port succeeded")
        } catch let error as IOError {
            #expect(error.errno == ECONNREFUSED)
            #expect(error.description.hasPrefix("connect 127.0.0.1:\(port): connection refused (ECONNREFUSED); "))
        }
    }

    private func localPort(of fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
