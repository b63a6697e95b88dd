// SPDX-License-Identifier: MIT
import Foundation
import Glibc
import Synchronization
import Testing
import VPNBasics
import VPNLinux

/// Tun, tap and rtnetlink tests. Each runs in a network namespace of its own (see
/// ``TestNamespace``), so nothing is configured in the root namespace.
@Suite(.enabled(if: Privilege.shouldRun, Privilege.reason))
struct NamespaceTests {
    init() throws {
        try #require(Privilege.available, "root and /dev/net/tun are required under CI=true")
    }

    @Test func tunConfiguredByNetlinkCarriesPackets() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let name = "vpnd-lt0"
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            let tun = try TunDevice(name: name, mode: .tun)
            checks.expect(tun.name == name)
            checks.expect(tun.mode == .tun)
            try netlink.setMTU(1420, on: name)
            try netlink.addAddress(NetlinkPrefix("10.77.0.1/24")!, on: name)
            try netlink.addAddress(NetlinkPrefix("fd77::1/64")!, on: name)
            try netlink.setLink(name, up: true)
            try netlink.addRoute(to: NetlinkPrefix("10.78.0.0/16")!, device: name)

            let link = try netlink.link(name)
            checks.expect(link.mtu == 1420)
            checks.expect(link.isUp)
            try checks.expect(link.index == (try tun.interfaceIndex()))
            let addresses = try netlink.addresses(on: name)
            checks.expect(addresses.contains(NetlinkPrefix("10.77.0.1/24")!))
            checks.expect(addresses.contains(NetlinkPrefix("fd77::1/64")!))
            try checks.expect(try netlink.routes(device: name).contains(NetlinkPrefix("10.78.0.0/16")!))

            // Adding the same address again names the operation, the subject and the fix.
            do {
                try netlink.addAddress(NetlinkPrefix("10.77.0.1/24")!, on: name)
                checks.fail("adding an address twice succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == EEXIST)
                checks.expect(
                    error.description.hasPrefix(
                        "netlink RTM_NEWADDR 10.77.0.1/24 on vpnd-lt0: file exists (EEXIST); the address is already configured"
                    ), "\(error)")
            }
            do {
                try netlink.addRoute(to: NetlinkPrefix("10.78.0.0/16")!, device: name)
                checks.fail("adding a route twice succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == EEXIST)
                checks.expect(error.description.hasPrefix("netlink RTM_NEWROUTE 10.78.0.0/16 dev vpnd-lt0: file exists (EEXIST)"))
            }

            // A second open of the same tun is refused with a hint.
            do {
                _ = try TunDevice(name: name, mode: .tun)
                checks.fail("second TUNSETIFF succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == EBUSY)
                checks.expect(error.description.contains("interface vpnd-lt0 is in use by another process"), "\(error)")
            }

            // Data out: a datagram to the tun's subnet and one to the routed prefix leave through the tun.
            let udp = try UDPSocket(bindingTo: Endpoint(ipv4: 10, 77, 0, 1, port: 0))
            try sendOne(udp, to: Endpoint(ipv4: 10, 77, 0, 2, port: 9), checks)
            let first = try readIPv4UDP(from: tun, to: [10, 77, 0, 2], checks)
            checks.expect(first[0] >> 4 == 4)
            checks.expect(first[9] == 17)
            checks.expect(Array(first[12..<16]) == [10, 77, 0, 1])
            try sendOne(udp, to: Endpoint(ipv4: 10, 78, 1, 1, port: 9), checks)
            _ = try readIPv4UDP(from: tun, to: [10, 78, 1, 1], checks)

            // Data in: a packet written to the tun reaches the socket.
            let packet = ipv4UDP(from: [10, 77, 0, 2], port: 4000, to: [10, 77, 0, 1], port: udp.localEndpoint.port,
                                 payload: Array("from the tun".utf8))
            let out = TestBuffers(count: 1)
            packet.withUnsafeBytes { out.buffers[0].append(contentsOf: $0) }
            try checks.expect(try tun.write(out.buffers[0]))
            try checks.require(try waitReadable(udp.pollHandle), "packet written to the tun did not reach the socket")
            let incoming = TestBuffers(count: 2)
            let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 2)
            defer { sources.deallocate() }
            try checks.expect(try udp.receive(into: incoming.buffers, sources: sources) == 1)
            checks.expect(incoming.buffers[0].byteArray == Array("from the tun".utf8))
            checks.expect(sources[0] == Endpoint(ipv4: 10, 77, 0, 2, port: 4000))

            // A packet that is not IP is dropped, not an error.
            out.reset()
            [UInt8](repeating: 0xEE, count: 40).withUnsafeBytes { out.buffers[0].append(contentsOf: $0) }
            try checks.expect(try tun.write(out.buffers[0]) == false)

            // Deletion.
            try netlink.deleteRoute(to: NetlinkPrefix("10.78.0.0/16")!, device: name)
            try checks.expect(try !netlink.routes(device: name).contains(NetlinkPrefix("10.78.0.0/16")!))
            try netlink.deleteAddress(NetlinkPrefix("fd77::1/64")!, on: name)
            try checks.expect(try !netlink.addresses(on: name).contains(NetlinkPrefix("fd77::1/64")!))
            do {
                try netlink.deleteRoute(to: NetlinkPrefix("10.78.0.0/16")!, device: name)
                checks.fail("deleting a missing route succeeded")
            } catch let error as IOError {
                checks.expect(error.errno == ESRCH)
            }
        }
        // Cross-check with iproute2 (the namespace still exists; the tun went with its descriptor).
        #expect(try ns.ipJSON(["link", "show"]).allSatisfy { ($0["ifname"] as? String) != name })
    }

    @Test func iproute2SeesWhatNetlinkConfigured() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        let name = "vpnd-lt2"
        // Keep the tun open while iproute2 looks: the thread waits for the check to finish.
        let tunReady = Mutex<Bool>(false)
        let checked = Mutex<Bool>(false)
        async let configured: Void = ns.run { _ in
            let netlink = try Netlink()
            let tun = try TunDevice(name: name, mode: .tun)
            try netlink.setMTU(1420, on: name)
            try netlink.addAddress(NetlinkPrefix("10.77.0.1/24")!, on: name)
            try netlink.addAddress(NetlinkPrefix("fd77::1/64")!, on: name)
            try netlink.setLink(name, up: true)
            try netlink.addRoute(to: NetlinkPrefix("10.78.0.0/16")!, device: name)
            tunReady.withLock { $0 = true }
            for _ in 0..<500 where !checked.withLock({ $0 }) { usleep(10_000) }
            withExtendedLifetime(tun) {}
        }
        for _ in 0..<500 where !tunReady.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        defer { checked.withLock { $0 = true } }
        let link = try #require(try ns.ipJSON(["link", "show", "dev", name]).first)
        #expect(link["mtu"] as? Int == 1420)
        #expect((link["flags"] as? [String])?.contains("UP") == true)
        let info = try #require(try ns.ipJSON(["addr", "show", "dev", name]).first?["addr_info"] as? [[String: Any]])
        let pairs = Set(info.compactMap { entry -> String? in
            guard let local = entry["local"] as? String, let length = entry["prefixlen"] as? Int else { return nil }
            return "\(local)/\(length)"
        })
        #expect(pairs.isSuperset(of: ["10.77.0.1/24", "fd77::1/64"]), "\(pairs)")
        let routes = try ns.ipJSON(["route", "show", "dev", name])
        #expect(routes.contains { $0["dst"] as? String == "10.78.0.0/16" && $0["protocol"] as? String == "static" })
        checked.withLock { $0 = true }
        try await configured
    }

    @Test func tapJoinsABridge() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        try ns.ip(["link", "add", "br0", "type", "bridge"])
        let name = "vpnd-lt1"
        let observed = try await ns.run { (checks: ThreadChecks) throws -> [String] in
            let netlink = try Netlink()
            let tap = try TunDevice(name: name, mode: .tap)
            checks.expect(tap.mode == .tap)
            try netlink.setMaster(of: name, to: "br0")
            try netlink.setLink(name, up: true)
            let bridgeIndex = try Netlink.interfaceIndex(named: "br0")
            try checks.expect(try netlink.link(name).masterIndex == bridgeIndex)
            let master = try ipJSON(["link", "show", "dev", name]).first?["master"] as? String ?? "none"

            // An Ethernet frame can be written to the tap.
            let frame = TestBuffers(count: 1)
            let ethernet: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 1, 0x88, 0xB5] + Array(repeating: 0, count: 46)
            ethernet.withUnsafeBytes { frame.buffers[0].append(contentsOf: $0) }
            try checks.expect(try tap.write(frame.buffers[0]))

            try netlink.setMaster(of: name, to: nil)
            try checks.expect(try netlink.link(name).masterIndex == 0)
            try netlink.deleteLink("br0")
            var gone = ""
            do { _ = try Netlink.interfaceIndex(named: "br0") } catch let error as IOError { gone = error.description }
            return [master, gone]
        }
        #expect(observed[0] == "br0")
        #expect(observed[1] == "if_nametoindex br0: no such device (ENODEV); no interface br0 in this network namespace")
    }
}

/// Sends one small datagram.
private func sendOne(_ socket: UDPSocket, to destination: Endpoint, _ checks: ThreadChecks) throws {
    let buffers = TestBuffers(count: 1)
    [1, 2, 3, 4].withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
    let sent = try [destination].withUnsafeBufferPointer { try socket.send(UnsafeBufferPointer(buffers.buffers), to: $0) }
    checks.expect(sent == 1)
    checks.expect(socket.sendCounters.socketRefused == 0)
}

/// Reads packets from `tun` until an IPv4 UDP packet to `destination` arrives (others, such as
/// IPv6 router solicitations, are skipped); fails after 5 s.
private func readIPv4UDP(from tun: TunDevice, to destination: [UInt8], _ checks: ThreadChecks) throws -> [UInt8] {
    let buffers = TestBuffers(count: 8)
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
        guard try waitReadable(tun.pollHandle, timeout: .seconds(1)) else { continue }
        buffers.reset()
        let n = try tun.read(into: buffers.buffers)
        for i in 0..<n {
            let packet = buffers.buffers[i].byteArray
            if packet.count >= 28, packet[0] >> 4 == 4, packet[9] == 17, Array(packet[16..<20]) == destination {
                return packet
            }
        }
    }
    checks.fail("no IPv4 UDP packet to \(destination) came out of \(tun.name)")
    throw CancellationError()
}

/// An IPv4/UDP packet with a correct header checksum and no UDP checksum.
private func ipv4UDP(from source: [UInt8], port sourcePort: UInt16, to destination: [UInt8], port: UInt16,
                     payload: [UInt8]) -> [UInt8] {
    let total = 20 + 8 + payload.count
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 17, 0, 0]
    p += source + destination
    var sum: UInt32 = 0
    for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(p[i]) << 8 | UInt32(p[i + 1]) }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    let checksum = ~UInt16(sum)
    p[10] = UInt8(checksum >> 8)
    p[11] = UInt8(checksum & 0xFF)
    let udpLength = 8 + payload.count
    p += [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(port >> 8), UInt8(port & 0xFF),
          UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0]
    return p + payload
}

/// Path MTU discovery on the UDP socket: DF on every datagram, "too big" errors read back from
/// the socket's error queue, and ICMP errors that never disturb receiving.
@Suite(.enabled(if: Privilege.shouldRun, Privilege.reason))
struct UDPPathMTUTests {
    init() throws {
        try #require(Privilege.available, "root and /dev/net/tun are required under CI=true")
    }

    @Test(arguments: [false, true])
    func oversizedDatagramIsRefusedAndItsPathMTUReported(dualStack: Bool) async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setMTU(1280, on: "lo")
            try netlink.setLink("lo", up: true)
            let bind = dualStack ? Endpoint(addressBytes: [UInt8](repeating: 0, count: 16), port: 0) : Endpoint(ipv4: 127, 0, 0, 1, port: 0)
            let sender = try UDPSocket(bindingTo: bind)
            let receiver = try UDPSocket(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0))
            let buffers = TestBuffers(count: 2, slotSize: 2048)
            [UInt8](repeating: 1, count: 1400).withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
            [UInt8](repeating: 2, count: 1000).withUnsafeBytes { buffers.buffers[1].append(contentsOf: $0) }
            let to = receiver.localEndpoint
            var destinations = [to, to]
            let sent = try destinations.withUnsafeMutableBufferPointer { d in
                try sender.send(UnsafeBufferPointer(buffers.buffers), to: UnsafeBufferPointer(d))
            }
            // The 1400-byte datagram is refused (DF: never fragmented) and counted; the other goes.
            checks.expect(sent == 2, "sent \(sent)")
            checks.expect(sender.sendCounters.socketRefused == 1, "dropped \(sender.sendCounters.socketRefused)")
            var reports: [(Endpoint, Int)] = []
            let read = sender.drainErrors { reports.append(($0, $1)) }
            checks.expect(read == 1 && reports.count == 1, "\(read) errors, \(reports)")
            checks.expect(reports.first?.1 == 1280, "\(reports)")
            checks.expect(reports.first.map { $0.0.isIPv4 && $0.0.address == to.address } == true, "\(reports)")
            checks.expect(sender.drainErrors { _, _ in } == 0, "the queue is empty after draining")
            let received = TestBuffers(count: 4, slotSize: 2048)
            var sources = [Endpoint](repeating: .none, count: 4)
            let got = try sources.withUnsafeMutableBufferPointer { try receiver.receive(into: received.buffers, sources: $0) }
            checks.expect(got == 1 && received.buffers[0].count == 1000, "received \(got)")
        }
    }

    @Test func portUnreachableDoesNotDisturbReceiving() async throws {
        let ns = try TestNamespace.make()
        defer { ns.delete() }
        try await ns.run { checks in
            let netlink = try Netlink()
            try netlink.setLink("lo", up: true)
            let socket = try UDPSocket(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0))
            let peer = try UDPSocket(bindingTo: Endpoint(ipv4: 127, 0, 0, 1, port: 0))
            let buffers = TestBuffers(count: 1, slotSize: 2048)
            [UInt8](repeating: 3, count: 100).withUnsafeBytes { buffers.buffers[0].append(contentsOf: $0) }
            // A closed port answers with ICMP port unreachable, which IP_RECVERR reports on the
            // next receive; a datagram from the peer must still be read.
            var closed = [Endpoint(ipv4: 127, 0, 0, 1, port: 9)]
            _ = try closed.withUnsafeMutableBufferPointer { try socket.send(UnsafeBufferPointer(buffers.buffers), to: UnsafeBufferPointer($0)) }
            usleep(50_000)
            var back = [socket.localEndpoint]
            _ = try back.withUnsafeMutableBufferPointer { try peer.send(UnsafeBufferPointer(buffers.buffers), to: UnsafeBufferPointer($0)) }
            usleep(50_000)
            let received = TestBuffers(count: 4, slotSize: 2048)
            var sources = [Endpoint](repeating: .none, count: 4)
            let got = try sources.withUnsafeMutableBufferPointer { try socket.receive(into: received.buffers, sources: $0) }
            checks.expect(got == 1, "received \(got)")
            var reports = 0
            checks.expect(socket.drainErrors { _, _ in reports += 1 } == 1, "the port-unreachable error is queued")
            checks.expect(reports == 0, "port unreachable is not a path MTU")
        }
    }
}
