// SPDX-License-Identifier: MIT
// vpnd-loadgen: many WireGuard clients in one process, for handshake storms against a server.
//
//   vpnd-loadgen peers --clients N [--seed S]
//       prints the server's [Peer] sections for the N clients (public key, inner /32)
//   vpnd-loadgen run --clients N --server-key KEY --server ADDR:PORT --source-base A.B.C.D
//                    [--server-inner 10.99.0.1] [--spread SECONDS] [--timeout SECONDS] [--seed S]
//       runs them and prints one JSON object with what happened
//
// Each client is a VPNCore Tunnel with one peer (the server) and its own UDP socket, bound to
// its own source address: source-base + 1 + i (a namespace with `ip route add local A.B.0.0/16
// dev lo` can bind them all), so the server's per-source limits apply to each as to real
// clients. Client i starts at i × spread / N by sending one ICMP echo request from its inner
// address 10.100.x.y (10.100.0.2 + i) to the server's inner address: that stages the packet and
// starts a handshake, exactly as a packet from an application does; the session's first data
// is that echo, and the server's kernel answers it through the tunnel. Keys are derived from
// the seed, so `peers` and `run` agree without files.
//
// Reported: sessions established and echo replies received (counts, and the times from each
// client's start, as percentiles), the time from the first start to the last session, the
// initiations sent and cookie replies received over all clients. Figures, never assertions.
import Glibc
import VPNBasics
import VPNCore
import VPNCrypto
import VPNLinux

// MARK: - Arguments

var arguments = Array(CommandLine.arguments.dropFirst())
func fail(_ message: String) -> Never {
    Posix.printError("vpnd-loadgen: \(message)\n")
    exit(2)
}
guard let command = arguments.first, ["peers", "run"].contains(command) else {
    fail("usage: vpnd-loadgen peers --clients N [--seed S] | run --clients N --server-key KEY --server ADDR:PORT --source-base A.B.C.D [--server-inner IP] [--spread S] [--timeout S] [--seed S]")
}
arguments.removeFirst()
var options: [String: String] = [:]
while !arguments.isEmpty {
    let name = arguments.removeFirst()
    guard name.hasPrefix("--"), !arguments.isEmpty else { fail("\(name): expected --option VALUE") }
    options[String(name.dropFirst(2))] = arguments.removeFirst()
}
@MainActor func option(_ name: String, default value: String? = nil) -> String {
    guard let text = options[name] ?? value else { fail("--\(name) is required") }
    return text
}
@MainActor func number(_ name: String, default value: String? = nil) -> Double {
    guard let n = Double(option(name, default: value)), n >= 0 else { fail("--\(name) must be a number") }
    return n
}
@MainActor func address(_ name: String, default value: String? = nil) -> IPAddress {
    guard let a = IPAddress(option(name, default: value)), a.isIPv4 else { fail("--\(name) must be an IPv4 address") }
    return a
}

let clientCount = Int(number("clients"))
guard clientCount >= 1 && clientCount <= 60_000 else { fail("--clients must be 1 to 60000") }
let seed = UInt64(number("seed", default: "1"))

/// Client i's private key: 32 bytes from SplitMix64 (benchmark keys, not secrets).
@MainActor func privateKey(_ i: Int) -> SecretKey {
    var generator = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i))
    return SecretKey(filling: { bytes in
        for j in 0..<4 { bytes.storeBytes(of: generator.next(), toByteOffset: j * 8, as: UInt64.self) }
    })
}

/// `base` + `offset` as an IPv4 address.
func ipv4(_ base: IPAddress, plus offset: Int) -> IPAddress {
    let b = base.bytes
    let value = (UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])) &+ UInt32(offset)
    return IPAddress(ipv4: UInt8(value >> 24), UInt8((value >> 16) & 255), UInt8((value >> 8) & 255), UInt8(value & 255))
}

let innerBase = IPAddress(ipv4: 10, 100, 0, 2)

/// The UDP source of client `offset − 1`: source-base + offset, any port.
@MainActor func sourceEndpoint(_ offset: Int) -> Endpoint {
    let b = ipv4(sourceBase, plus: offset).bytes
    return Endpoint(ipv4: b[0], b[1], b[2], b[3], port: 0)
}

if command == "peers" {
    var out = ""
    for i in 0..<clientCount {
        let key = X25519.publicKey(for: privateKey(i))
        out += "\n[Peer]\nPublicKey = \(KeyEncoding.encode(key))\nAllowedIPs = \(ipv4(innerBase, plus: i))/32\n"
    }
    print(out, terminator: "")
    exit(0)
}

guard let serverKey = try? KeyEncoding.decodePublicKey(option("server-key")) else { fail("--server-key is not a base64 public key") }
guard let server = Endpoint(option("server")) else { fail("--server must be ADDR:PORT") }
let sourceBase = address("source-base")
let serverInner = address("server-inner", default: "10.99.0.1")
let spread = number("spread", default: "2")
let timeout = number("timeout", default: "15")

// MARK: - Clients

struct WallTimestamps: TimestampSource {
    mutating func timestamp() -> TAI64N {
        let now = wallClockNow()
        return TAI64N(unixSeconds: now.seconds, nanoseconds: UInt32(now.nanoseconds))
    }
}

/// An ICMP echo request from `source` to `destination` (IPv4, 56 bytes of payload).
func echoRequest(from source: IPAddress, to destination: IPAddress, id: UInt16) -> [UInt8] {
    var packet = [UInt8](repeating: 0, count: 20 + 8 + 56)
    packet[0] = 0x45
    packet[2] = UInt8(packet.count >> 8)
    packet[3] = UInt8(packet.count & 255)
    packet[8] = 64
    packet[9] = 1
    for j in 0..<4 {
        packet[12 + j] = source.bytes[j]
        packet[16 + j] = destination.bytes[j]
    }
    packet[20] = 8
    packet[24] = UInt8(id >> 8)
    packet[25] = UInt8(id & 255)
    packet[27] = 1
    for j in 28..<packet.count { packet[j] = UInt8(truncatingIfNeeded: j) }
    func checksum(_ range: Range<Int>) -> UInt16 {
        packet.withUnsafeBytes { ~InternetChecksum.fold(InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: $0[range]))) }
    }
    let ip = checksum(0..<20)
    packet[10] = UInt8(ip >> 8)
    packet[11] = UInt8(ip & 255)
    let icmp = checksum(20..<packet.count)
    packet[22] = UInt8(icmp >> 8)
    packet[23] = UInt8(icmp & 255)
    return packet
}

_ = Sodium.initialise()
var limit = rlimit()
getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)

let clock = BootClock()
let poller: EpollPoller
do { poller = try EpollPoller(capacity: 256) } catch { fail("epoll: \(error)") }
var tunnels: [Tunnel] = []
var sockets: [UDPSocket] = []
tunnels.reserveCapacity(clientCount)
sockets.reserveCapacity(clientCount)
let serverPeer = [IPPrefix(host: serverInner)]
for i in 0..<clientCount {
    var configuration = TunnelConfiguration(
        mode: .tun, privateKey: privateKey(i), mtu: 1420,
        peers: [PeerConfiguration(publicKey: serverKey, presharedKey: nil, allowedIPs: serverPeer, endpoint: server)],
        stagedPacketsPerPeer: 2)
    configuration.pathMTUDiscovery = false
    tunnels.append(Tunnel(configuration: configuration, entropy: SystemEntropy(), timestamps: WallTimestamps(), outboxCapacity: 4))
    do {
        let socket = try UDPSocket(
            bindingTo: sourceEndpoint(1 + i), batchCapacity: 4, bufferSize: 1 << 16,
            pathMTUDiscovery: false)
        try poller.register(socket.pollHandle, token: UInt64(i), events: .readable)
        sockets.append(socket)
    } catch {
        fail("client \(i): \(error) (the source addresses need `ip route add local \(sourceBase)/16 dev lo`, and enough file descriptors)")
    }
}

let slab = PacketSlab(slotSize: 2048, slotCount: 5)
let receiveBuffers = UnsafeMutableBufferPointer<PacketBuffer>.allocate(capacity: 4)
let sources = UnsafeMutableBufferPointer<Endpoint>.allocate(capacity: 4)
for j in 0..<4 { (receiveBuffers.baseAddress! + j).initialize(to: slab.buffer(j, headroom: 0)) }
sources.initialize(repeating: .none)
let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 256)
events.initialize(repeating: PollEvent(token: 0, events: []))
var sendFailures = 0

/// Sends what client `i`'s tunnel queued (handshakes, the flushed echo).
@MainActor func flush(_ i: Int) {
    let tunnel = tunnels[i]
    while tunnel.outbox.dequeue({ frame in
        let buffer = frame.buffer
        let destination = frame.destination
        withUnsafePointer(to: buffer) { b in
            withUnsafePointer(to: destination) { d in
                if (try? sockets[i].send(UnsafeBufferPointer(start: b, count: 1), to: UnsafeBufferPointer(start: d, count: 1))) != 1 {
                    sendFailures += 1
                }
            }
        }
    }) {}
}

var startedAt = [Instant?](repeating: nil, count: clientCount)
var sessionAt = [Instant?](repeating: nil, count: clientCount)
var repliedAt = [Instant?](repeating: nil, count: clientCount)
var started = 0
var sessions = 0
var replies = 0
let origin = clock.now()
let spreadNanos = Int64(spread * 1e9)
let end = origin + .nanoseconds(Int64(timeout * 1e9))
var lastTick = origin

while clock.now() < end && replies < clientCount {
    var now = clock.now()
    // Start every client whose time has come.
    while started < clientCount, origin + .nanoseconds(spreadNanos * Int64(started) / Int64(clientCount)) <= now {
        let i = started
        var buffer = slab.buffer(4, headroom: TransportData.headroom)
        echoRequest(from: ipv4(innerBase, plus: i), to: serverInner, id: UInt16(truncatingIfNeeded: i)).withUnsafeBytes {
            buffer.append(contentsOf: $0)
        }
        _ = tunnels[i].encapsulate(&buffer, now: now)
        startedAt[i] = now
        flush(i)
        started += 1
    }
    var wait = Duration.milliseconds(5)
    if started < clientCount {
        let next = origin + .nanoseconds(spreadNanos * Int64(started) / Int64(clientCount))
        if next > now { wait = min(wait, next - now) } else { wait = .zero }
    }
    let ready = (try? poller.wait(into: events, timeout: wait)) ?? 0
    now = clock.now()
    for e in 0..<ready {
        let i = Int(events[e].token)
        while true {
            for j in 0..<4 { receiveBuffers[j].reset(headroom: 0) }
            let count = (try? sockets[i].receive(into: receiveBuffers, sources: sources)) ?? 0
            if count == 0 { break }
            for j in 0..<count {
                let result = tunnels[i].decapsulate(&receiveBuffers[j], from: sources[j], now: now)
                if case .deliver = result, repliedAt[i] == nil {
                    repliedAt[i] = now
                    replies += 1
                }
                if sessionAt[i] == nil, tunnels[i].status(now: now).peers[0].hasSession {
                    sessionAt[i] = now
                    sessions += 1
                }
            }
            flush(i)
        }
    }
    // Timers (retries after 5 s, a cookie's retry): every client that has started, each 5 ms.
    if now - lastTick >= .milliseconds(5) {
        lastTick = now
        for i in 0..<started {
            if let deadline = tunnels[i].nextDeadline, deadline <= now {
                tunnels[i].tick(now: now)
                flush(i)
            }
        }
    }
}

// MARK: - Report

func seconds(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return Double(s) + Double(atto) / 1e18
}
func percentiles(_ values: [Double]) -> String {
    guard !values.isEmpty else { return "null" }
    let sorted = values.sorted()
    func at(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(p * Double(sorted.count - 1) + 0.5))] }
    func f(_ x: Double) -> String {
        let ms = (x * 1000).rounded() / 1000
        return "\(ms)"
    }
    return "{\"p50\": \(f(at(0.5))), \"p90\": \(f(at(0.9))), \"p99\": \(f(at(0.99))), \"max\": \(f(sorted.last!))}"
}
var handshakeTimes: [Double] = []
var replyTimes: [Double] = []
var lastSession = origin
for i in 0..<clientCount {
    if let s = startedAt[i], let e = sessionAt[i] {
        handshakeTimes.append(seconds(e - s))
        if e > lastSession { lastSession = e }
    }
    if let s = startedAt[i], let e = repliedAt[i] { replyTimes.append(seconds(e - s)) }
}
let finish = clock.now()
var initiations: UInt64 = 0
var cookies: UInt64 = 0
for tunnel in tunnels {
    let peer = tunnel.status(now: finish).peers[0]
    initiations += peer.initiationsSent
    cookies += peer.cookieRepliesReceived
}
print("""
    {"clients": \(clientCount), "spread_seconds": \(spread), "started": \(started), "sessions": \(sessions), \
    "echo_replies": \(replies), "all_sessions_after_seconds": \(sessions == clientCount ? "\((seconds(lastSession - origin) * 1000).rounded() / 1000)" : "null"), \
    "handshake_seconds": \(percentiles(handshakeTimes)), "first_reply_seconds": \(percentiles(replyTimes)), \
    "initiations_sent": \(initiations), "cookie_replies_received": \(cookies), "send_failures": \(sendFailures), \
    "ran_seconds": \((seconds(finish - origin) * 1000).rounded() / 1000)}
    """)
