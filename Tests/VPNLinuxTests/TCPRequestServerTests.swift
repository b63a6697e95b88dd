// SPDX-License-Identifier: MIT
import Glibc
import Synchronization
import Testing
import VPNBasics
import VPNLinux

/// The bounded one-request server behind `MetricsListen`, on loopback: answers, size cap,
/// request timeout, the connection limit that idle clients cannot exhaust.
@Suite("TCPRequestServer")
struct TCPRequestServerTests {
    /// Answers "ok <n>" once the request holds a blank line; "too large" past the limit.
    static func handler(limit: Int) -> TCPRequestServer.Handler {
        { bytes, ended in
            if let end = bytes.indices.dropLast().first(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }), end < limit {
                return Array("ok \(end)\n".utf8)
            }
            if bytes.count > limit { return Array("too large \(bytes.count)\n".utf8) }
            return ended ? Array("incomplete\n".utf8) : nil
        }
    }

    static func server(_ limits: TCPRequestServer.Limits) throws -> TCPRequestServer {
        let server = try TCPRequestServer(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0), inUseHint: "test")
        #expect(server.start(threadName: "test-requests", limits: limits, handler: handler(limit: limits.maximumRequestBytes)))
        return server
    }

    /// A blocking client socket connected to 127.0.0.1:`port`, reads timing out after 5 s.
    static func connectClient(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(rc == 0, "connect: errno \(errno)")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes (nil: a reset or the 5 s timeout).
    static func readToEnd(_ fd: Int32) -> String? {
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            if n == 0 { return String(decoding: reply, as: UTF8.self) }
            reply += chunk[0..<n]
        }
    }

    static func exchange(_ port: UInt16, _ request: String) throws -> String? {
        let fd = try connectClient(port)
        defer { close(fd) }
        send(fd, request)
        return readToEnd(fd)
    }

    @Test("a request in pieces is answered once complete, then the connection closes")
    func answersInPieces() throws {
        let server = try Self.server(.init())
        defer { server.stop() }
        let fd = try Self.connectClient(server.localEndpoint.port)
        defer { close(fd) }
        Self.send(fd, "GET /x\n")
        usleep(50_000)
        Self.send(fd, "\nignored")
        #expect(Self.readToEnd(fd) == "ok 6\n")
        // A client that stops sending before the request is complete gets the handler's verdict.
        let half = try Self.connectClient(server.localEndpoint.port)
        defer { close(half) }
        Self.send(half, "half")
        shutdown(half, Int32(SHUT_WR))
        #expect(Self.readToEnd(half) == "incomplete\n")
    }

    @Test("more than the limit is refused with the handler's answer (read whole, no reset), and the server goes on")
    func oversized() throws {
        let server = try Self.server(.init(maximumRequestBytes: 4096))
        defer { server.stop() }
        let big = "GET /x\n" + String(repeating: "h", count: 5120) + "\n\n"
        #expect(try Self.exchange(server.localEndpoint.port, big) == "too large 4097\n")
        #expect(try Self.exchange(server.localEndpoint.port, "GET /y\n\n") == "ok 6\n")
    }

    @Test("a connection that sends nothing is closed after the request timeout, without an answer")
    func idleTimeout() throws {
        let server = try Self.server(.init(requestTimeout: .milliseconds(400)))
        defer { server.stop() }
        let fd = try Self.connectClient(server.localEndpoint.port)
        defer { close(fd) }
        let start = ContinuousClock.now
        #expect(Self.readToEnd(fd) == "")
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(350) && waited < .seconds(3), "\(waited)")
    }

    @Test("20 idle connections do not keep a new request from being answered; at most 8 are held")
    func idleConnectionsCannotExhaustIt() throws {
        let server = try Self.server(.init(maximumConnections: 8, requestTimeout: .seconds(5)))
        defer { server.stop() }
        var idle: [Int32] = []
        defer { for fd in idle { close(fd) } }
        for _ in 0..<20 {
            idle.append(try Self.connectClient(server.localEndpoint.port))
            usleep(2_000)
        }
        usleep(100_000)
        let start = ContinuousClock.now
        #expect(try Self.exchange(server.localEndpoint.port, "GET /metrics\n\n") == "ok 12\n")
        #expect(ContinuousClock.now - start < .seconds(1))
        // The oldest idle ones were closed to make room (at most 8 are still open at the server).
        var closed = 0
        for fd in idle {
            var byte: UInt8 = 0
            if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == 0 { closed += 1 }
        }
        #expect(closed >= 13, "\(closed) of 20 idle connections closed by the server")
    }

    @Test("stop closes the listening socket")
    func stops() throws {
        let server = try Self.server(.init())
        let port = server.localEndpoint.port
        #expect(try Self.exchange(port, "a\n\n") == "ok 1\n")
        server.stop()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(rc != 0)
    }

    @Test("a port in use is an IOError with the hint given")
    func portInUse() throws {
        let server = try Self.server(.init())
        defer { server.stop() }
        #expect {
            _ = try TCPRequestServer(bindingTo: server.localEndpoint, inUseHint: "pick another port for MetricsListen")
        } throws: { error in
            (error as? IOError)?.errno == EADDRINUSE && "\(error)".contains("pick another port for MetricsListen")
        }
    }
}
