// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// A non-blocking UDP socket that receives with `recvmmsg` and sends with `sendmmsg` in batches.
///
/// Bound to `[::]` it is dual-stack (`IPV6_V6ONLY=0`): IPv4 peers appear as IPv4-mapped endpoints
/// and IPv4 destinations are sent to their mapped address. Bound to an IPv4 address it is an
/// `AF_INET` socket and IPv6 destinations are dropped.
///
/// Offloads (``LinuxOffloadOptions``, off by default): with `udpGSO` the socket can send a run of
/// equal-sized datagrams as one super-datagram (``sendSegmented(_:segmentSize:to:)``, `UDP_SEGMENT`);
/// with `udpGRO` the kernel hands over runs of datagrams coalesced into one buffer, read with
/// ``receive(into:sources:segmentSizes:)`` (`UDP_GRO`). Each is probed here and reported by
/// ``udpGSOActive``, ``udpGROActive`` and ``offloadSummary``; without GSO, segmented sends go out
/// as single datagrams.
///
/// The batch arrays and control-message buffers are allocated once, here; receiving and sending
/// allocate nothing. Thread-safety: ``receive(into:sources:)`` and ``send(_:to:)`` each have their
/// own arrays, so one thread may receive while another sends; each of them must stay on one thread
/// at a time.
public final class UDPSocket: DatagramSocket, @unchecked Sendable {
    // @unchecked: the only mutable state is the two scratch batches below, one used only by
    // receive() and one only by send(); the descriptor and endpoint are immutable.

    /// The socket's descriptor.
    public let fileDescriptor: Int32
    /// The bound address (with the port the kernel picked when asked for port 0).
    public let localEndpoint: Endpoint
    /// `AF_INET` or `AF_INET6`.
    public let family: Int32
    /// The most datagrams one ``receive(into:sources:)`` or ``send(_:to:)`` call handles.
    public let batchCapacity: Int

    /// Whether the kernel coalesces received datagrams (`UDP_GRO` accepted); then read with
    /// ``receive(into:sources:segmentSizes:)``.
    public let udpGROActive: Bool
    /// Why GSO or GRO was asked for and is not active; empty otherwise.
    let offloadRefusal: String

    let receiveScratch: Scratch
    let sendScratch: Scratch

    public var pollHandle: PollHandle { PollHandle(rawValue: fileDescriptor) }

    /// Opens a socket bound to `endpoint`.
    ///
    /// - Parameters:
    ///   - endpoint: the local address and port; `[::]:port` (or ``Endpoint/none`` for any port) is
    ///     dual-stack, an IPv4 address makes an IPv4-only socket.
    ///   - batchCapacity: the most datagrams per call.
    ///   - bufferSize: the requested `SO_RCVBUF`/`SO_SNDBUF` (forced past `rmem_max` when allowed).
    ///   - offloads: `udpGSO` and `udpGRO` are probed and used when the kernel accepts them (the
    ///     default asks for neither); `tunVnetHeader` is ignored here.
    /// - Throws: ``IOError``, e.g. "bind 0.0.0.0:51820: address already in use (EADDRINUSE); ...".
    public init(
        bindingTo endpoint: Endpoint, batchCapacity: Int = 64, bufferSize: Int = 7 << 20,
        offloads: LinuxOffloadOptions = .disabled, pathMTUDiscovery: Bool = true
    ) throws(IOError) {
        precondition(batchCapacity > 0 && batchCapacity <= 1024, "UDPSocket batchCapacity must be 1...1024")
        let family = endpoint.socketFamily
        let fd: Int32
        switch Syscall.retrying({ socket(family, Int32(SOCK_DGRAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("socket(UDP)", subject: endpoint.description, errno: errno)
        }
        do throws(IOError) {
            if family == AF_INET6 {
                let v6only: Int32 = endpoint.isUnspecified ? 0 : 1
                if case .failure(let errno) = Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, v6only) {
                    throw .system("setsockopt(IPV6_V6ONLY)", subject: endpoint.description, errno: errno)
                }
            }
            UDPSocket.raiseBuffers(fd, size: Int32(clamping: bufferSize))
            if pathMTUDiscovery {
                let rc = vpnd_udp_enable_pmtu(fd, family)
                if rc != 0 {
                    throw .system(
                        "setsockopt(IP_MTU_DISCOVER, IP_RECVERR)", subject: endpoint.description,
                        errno: Errno(rawValue: -rc))
                }
            }
            guard case (var address, let length)? = endpoint.sockaddr(family: family) else {
                throw .invalid("bind", subject: endpoint.description, reason: "unsupported address")
            }
            let bound = Syscall.retrying { withSockaddrPointer(&address) { bind(fd, $0, length) } }
            if case .failure(let errno) = bound {
                let hint: String
                switch errno.rawValue {
                case EADDRINUSE:
                    hint = "another process (vpnd or WireGuard?) uses this port: pick another ListenPort or stop it"
                case EADDRNOTAVAIL: hint = "no interface has this address"
                case EACCES: hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE"
                default: hint = IOError.genericHint(errno)
                }
                throw .system("bind", subject: endpoint.description, errno: errno, hint: hint)
            }
        } catch {
            Syscall.close(fd)
            throw error
        }
        self.fileDescriptor = fd
        self.family = family
        self.localEndpoint = VPNLinux.localEndpoint(of: fd)
        self.batchCapacity = batchCapacity
        self.receiveScratch = Scratch(capacity: batchCapacity)
        self.sendScratch = Scratch(capacity: batchCapacity)
        var refusals: [String] = []
        if offloads.udpGSO {
            let rc = vpnd_udp_probe_gso(fd)
            if rc == 0 {
                sendScratch.gsoEnabled = true
            } else {
                refusals.append("gso refused: setsockopt(UDP_SEGMENT): \(IOError.reason(-rc))")
            }
        }
        if offloads.udpGRO {
            let rc = vpnd_udp_enable_gro(fd)
            udpGROActive = rc == 0
            if rc != 0 { refusals.append("gro refused: setsockopt(UDP_GRO): \(IOError.reason(-rc))") }
        } else {
            udpGROActive = false
        }
        offloadRefusal = refusals.joined(separator: "; ")
    }

    /// Opens a dual-stack socket on `port` of every address (`[::]:port`); 0 picks a free port.
    public convenience init(
        port: UInt16, batchCapacity: Int = 64, bufferSize: Int = 7 << 20, offloads: LinuxOffloadOptions = .disabled,
        pathMTUDiscovery: Bool = true
    ) throws(IOError) {
        try self.init(
            bindingTo: Endpoint(address: (0, 0), port: port), batchCapacity: batchCapacity, bufferSize: bufferSize,
            offloads: offloads, pathMTUDiscovery: pathMTUDiscovery)
    }

    deinit { Syscall.close(fileDescriptor) }

    /// `SO_MARK` (needs CAP_NET_ADMIN).
    public func setFirewallMark(_ mark: UInt32) throws(IOError) {
        if case .failure(let errno) = Syscall.setOption(fileDescriptor, SOL_SOCKET, SO_MARK, Int32(bitPattern: mark)) {
            throw .system("setsockopt(SO_MARK)", subject: localEndpoint.description, errno: errno)
        }
    }

    /// Sets SO_RCVBUF/SO_SNDBUF to `size`, past the sysctl limits when the process may
    /// (`SO_RCVBUFFORCE` needs CAP_NET_ADMIN), else as far as the limits allow.
    private static func raiseBuffers(_ fd: Int32, size: Int32) {
        if case .failure = Syscall.setOption(fd, SOL_SOCKET, SO_RCVBUFFORCE, size) {
            _ = Syscall.setOption(fd, SOL_SOCKET, SO_RCVBUF, size)
        }
        if case .failure = Syscall.setOption(fd, SOL_SOCKET, SO_SNDBUFFORCE, size) {
            _ = Syscall.setOption(fd, SOL_SOCKET, SO_SNDBUF, size)
        }
    }

    /// The kernel's receive buffer size (SO_RCVBUF, which Linux reports doubled).
    public var receiveBufferSize: Int {
        (try? Syscall.getOption(fileDescriptor, SOL_SOCKET, SO_RCVBUF).get()).map(Int.init) ?? 0
    }

    /// What sending dropped on its own: datagrams the kernel refused for their destination
    /// (unreachable, not permitted, too big, IPv6 on an IPv4 socket) in `socketRefused`, the rest
    /// of a split run that a full socket cut short in `socketFull`, and segmented messages the
    /// kernel refused whole (sent as single datagrams instead) in `gsoFallbacks`. Read it from the
    /// sending thread.
    public var sendCounters: TransportCounters {
        TransportCounters(
            socketFull: sendScratch.cutShort, socketRefused: sendScratch.refused, gsoFallbacks: sendScratch.gsoFallbacks)
    }

    /// Receives up to `min(buffers.count, sources.count, batchCapacity)` datagrams into the
    /// buffers' tails and their senders into `sources`. Returns how many; 0 when none is waiting.
    /// A datagram longer than its buffer's tailroom is cut short. Allocates nothing.
    ///
    /// On a socket with ``udpGROActive`` use ``receive(into:sources:segmentSizes:)`` instead (a
    /// precondition): a coalesced buffer cannot be split without its segment size.
    ///
    /// The corresponding C call is `recvmmsg(2)`.
    public func receive(
        into buffers: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeMutableBufferPointer<Endpoint>
    ) throws(IOError) -> Int {
        precondition(!udpGROActive, "UDPSocket with GRO: receive with receive(into:sources:segmentSizes:)")
        let count = min(min(buffers.count, sources.count), batchCapacity)
        if count == 0 { return 0 }
        let s = receiveScratch
        for i in 0..<count {
            let tail = buffers[i].tail
            s.bases[i] = tail.baseAddress
            s.lengths[i] = tail.count
        }
        let received = Int(
            vpnd_udp_recv_batch(fileDescriptor, s.batch, s.bases, s.lengths, UInt32(count), s.outLengths, s.endpoints))
        if received < 0 {
            throw .system("recvmmsg", subject: localEndpoint.description, errno: Errno(rawValue: Int32(-received)))
        }
        for i in 0..<received {
            buffers[i].didWrite(s.outLengths[i])
            sources[i] = Endpoint(s.endpoints[i])
        }
        return received
    }

    /// Sends `buffers[i]` to `destinations[i]` for i below `min(buffers.count, destinations.count,
    /// batchCapacity)`. Returns how many were consumed; fewer than asked when the socket would
    /// block. A datagram the kernel refuses for its destination alone is dropped, counted in
    /// ``sendCounters`` (`socketRefused`), and counts as consumed, as the network would drop it. Allocates nothing.
    ///
    /// The corresponding C call is `sendmmsg(2)`.
    public func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) -> Int {
        let count = min(min(buffers.count, destinations.count), batchCapacity)
        if count == 0 { return 0 }
        let s = sendScratch
        for i in 0..<count {
            let bytes = buffers[i].bytes
            s.bases[i] = bytes.baseAddress
            s.lengths[i] = bytes.count
            s.endpoints[i] = vpnd_endpoint(destinations[i])
        }
        var dropped: UInt32 = 0
        let sent = Int(
            vpnd_udp_send_batch(
                fileDescriptor, s.batch, family, s.constBases, s.lengths, s.endpoints, UInt32(count), &dropped))
        s.refused &+= UInt64(dropped)
        if sent < 0 {
            throw .system("sendmmsg", subject: localEndpoint.description, errno: Errno(rawValue: Int32(-sent)))
        }
        return sent
    }
}

/// Arrays for one direction of a ``UDPSocket``, allocated once.
extension UDPSocket: PathMTUReportingSocket {
    public func drainErrors(_ report: (Endpoint, Int) -> Void) -> Int {
        var read = 0
        // Bounded: the queue holds what the kernel queued so far; a flood of ICMP cannot hold
        // the data plane here.
        while read < 256 {
            var destination = vpnd_endpoint()
            var mtu: UInt32 = 0
            let rc = vpnd_udp_read_error(fileDescriptor, &destination, &mtu)
            if rc <= 0 { break }
            read += 1
            if mtu > 0 { report(Endpoint(destination), Int(mtu)) }
        }
        return read
    }
}

final class Scratch {
    let capacity: Int
    let batch: OpaquePointer
    let bases: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let lengths: UnsafeMutablePointer<Int>
    let outLengths: UnsafeMutablePointer<Int>
    let endpoints: UnsafeMutablePointer<vpnd_endpoint>
    /// Sending side: datagrams the kernel refused for their destination.
    var refused: UInt64 = 0
    /// Sending side: datagrams of a split run dropped when a full socket cut the run short.
    var cutShort: UInt64 = 0
    /// Per message: the UDP_SEGMENT size to send with, or the UDP_GRO size received (0: none).
    let segmentSizes: UnsafeMutablePointer<UInt16>
    /// One segmented message cut into single datagrams, when GSO is off or refused.
    let splitBases: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    let splitLengths: UnsafeMutablePointer<Int>
    let splitEndpoints: UnsafeMutablePointer<vpnd_endpoint>
    /// Sending side: whether segmented sends go to the kernel whole.
    var gsoEnabled = false
    /// Sending side: why GSO was turned off after start-up; empty while it is on.
    var gsoDisabledReason = ""
    /// Sending side: segmented messages the kernel refused whole and that went out as singles.
    var gsoFallbacks: UInt64 = 0

    init(capacity: Int) {
        self.capacity = capacity
        guard let batch = vpnd_mmsg_create(UInt32(capacity)) else { fatalError("out of memory for a UDP batch") }
        self.batch = batch
        bases = .allocate(capacity: capacity)
        bases.initialize(repeating: nil, count: capacity)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
        outLengths = .allocate(capacity: capacity)
        outLengths.initialize(repeating: 0, count: capacity)
        endpoints = .allocate(capacity: capacity)
        endpoints.initialize(repeating: vpnd_endpoint(), count: capacity)
        segmentSizes = .allocate(capacity: capacity)
        segmentSizes.initialize(repeating: 0, count: capacity)
        let segments = Int(VPND_UDP_MAX_SEGMENTS)
        splitBases = .allocate(capacity: segments)
        splitBases.initialize(repeating: nil, count: segments)
        splitLengths = .allocate(capacity: segments)
        splitLengths.initialize(repeating: 0, count: segments)
        splitEndpoints = .allocate(capacity: segments)
        splitEndpoints.initialize(repeating: vpnd_endpoint(), count: segments)
    }

    /// `bases` as the `const void *const *` that sending takes.
    var constBases: UnsafePointer<UnsafeRawPointer?> {
        UnsafeRawPointer(bases).assumingMemoryBound(to: UnsafeRawPointer?.self)
    }

    deinit {
        vpnd_mmsg_destroy(batch)
        bases.deallocate()
        lengths.deallocate()
        outLengths.deallocate()
        endpoints.deallocate()
        segmentSizes.deallocate()
        splitBases.deallocate()
        splitLengths.deallocate()
        splitEndpoints.deallocate()
    }
}
