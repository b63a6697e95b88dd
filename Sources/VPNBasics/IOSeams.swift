// SPDX-License-Identifier: MIT

/// An I/O failure, carried from the Linux layer to the daemon without boxing.
///
/// `description` says what failed, on what, and how to fix it, in one line:
/// "opening /dev/net/tun: permission denied (EPERM); vpnd needs root or CAP_NET_ADMIN".
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// The operation, e.g. "ioctl(TUNSETIFF)" or "bind".
    public var operation: String
    /// What it was done to, e.g. "vpnd0" or "0.0.0.0:51820".
    public var subject: String
    /// The `errno` value, or 0 when the failure is not a syscall's.
    public var errno: Int32
    /// The errno's name and text, e.g. "address already in use (EADDRINUSE)".
    public var reason: String
    /// What the user can do about it; may be empty.
    public var hint: String

    public init(operation: String, subject: String, errno: Int32, reason: String, hint: String = "") {
        self.operation = operation
        self.subject = subject
        self.errno = errno
        self.reason = reason
        self.hint = hint
    }

    public var description: String {
        let head = subject.isEmpty ? "\(operation): \(reason)" : "\(operation) \(subject): \(reason)"
        return hint.isEmpty ? head : "\(head); \(hint)"
    }
}

/// An opaque readiness handle (a file descriptor on Linux). The daemon passes it to the
/// ``Poller`` and never interprets it.
public struct PollHandle: Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}

/// Something a ``Poller`` can watch.
public protocol Pollable: AnyObject {
    /// The handle to register with a poller.
    var pollHandle: PollHandle { get }
}

/// Readiness interests and results.
public struct PollEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: 1 << 0)
    public static let writable = PollEvents(rawValue: 1 << 1)
    /// The other end closed or the handle failed (always reported, never requested).
    public static let hangup = PollEvents(rawValue: 1 << 2)
}

/// One readiness result: the token given at registration and what is ready.
public struct PollEvent: Sendable {
    public var token: UInt64
    public var events: PollEvents
    public init(token: UInt64, events: PollEvents) {
        self.token = token
        self.events = events
    }
}

/// Waits for readiness on many handles at once (epoll on Linux, a fake in tests).
/// Not thread-safe: one data-plane thread waits on it; ``Wakeup`` interrupts it from elsewhere.
public protocol Poller: AnyObject {
    /// Watches `handle` for `events`, reporting them with `token`. Level-triggered.
    func register(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError)
    /// Changes the events watched on `handle`.
    func modify(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError)
    /// Stops watching `handle`.
    func unregister(_ handle: PollHandle)
    /// Waits until something is ready or `timeout` passes (nil waits indefinitely; zero polls).
    /// Fills `events` from the start and returns how many were filled.
    func wait(into events: UnsafeMutableBufferPointer<PollEvent>, timeout: Duration?) throws(IOError) -> Int
}

/// A cross-thread doorbell (eventfd on Linux): ``signal()`` from any thread makes the data-plane
/// poller return; the loop then calls ``drain()``.
public protocol Wakeup: Pollable, Sendable {
    func signal()
    func drain()
}

/// A tun or tap device: IP packets or Ethernet frames, one per read or write.
public protocol PacketDevice: Pollable {
    /// The interface name, e.g. "vpnd0".
    var name: String { get }
    /// Reads up to `buffers.count` packets, each into its buffer's tail (headroom kept).
    /// Returns how many were read; 0 when none is ready.
    func read(into buffers: UnsafeMutableBufferPointer<PacketBuffer>) throws(IOError) -> Int
    /// Writes `buffer`'s bytes as one packet. Returns false when the device would block (the
    /// packet is dropped, as a full NIC queue drops).
    func write(_ buffer: PacketBuffer) throws(IOError) -> Bool
}

/// A UDP socket, batch-shaped (recvmmsg/sendmmsg on Linux).
public protocol DatagramSocket: Pollable {
    /// The local address the socket is bound to.
    var localEndpoint: Endpoint { get }
    /// Receives up to `buffers.count` datagrams into the buffers' tails and their senders into
    /// `sources`. Returns how many were received; 0 when none is ready.
    func receive(
        into buffers: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeMutableBufferPointer<Endpoint>
    ) throws(IOError) -> Int
    /// Sends `buffers[i]` to `destinations[i]` for each i. Returns how many were sent; fewer
    /// than asked when the socket would block.
    func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) -> Int
    /// What the socket dropped on its own while sending (refused destinations, runs cut short,
    /// GSO sends split into single datagrams). Read it from the sending thread.
    var sendCounters: TransportCounters { get }
    /// Marks every packet the socket sends with `mark` (`SO_MARK`; 0 clears it): policy routing
    /// keeps the tunnel's own underlay out of the tunnel (wg-quick's full tunnel).
    func setFirewallMark(_ mark: UInt32) throws(IOError)
}

extension DatagramSocket {
    /// A socket that drops nothing on its own (the fakes).
    public var sendCounters: TransportCounters { TransportCounters() }
    /// A socket that has no marks (the fakes): nothing to do.
    public func setFirewallMark(_ mark: UInt32) throws(IOError) {}
}

/// A connected byte stream (a TCP connection on Linux), non-blocking.
/// A datagram socket that sends with the DF bit and reports what it learns of path MTUs: ICMP
/// "fragmentation needed" / "packet too big" and local `EMSGSIZE` errors queued for datagrams it
/// sent. A pending error shows as ``PollEvents/hangup`` on its poll handle until read.
public protocol PathMTUReportingSocket: DatagramSocket {
    /// Reads every error queued on the socket, without blocking, and calls `report` for each
    /// "too big" one with the datagram's destination (port 0 when the kernel does not say) and
    /// the path MTU (IP header included). Returns the number of errors read.
    func drainErrors(_ report: (Endpoint, Int) -> Void) -> Int
}

public protocol StreamConnection: Pollable {
    /// The peer's address.
    var remoteEndpoint: Endpoint { get }
    /// Reads into `buffer`. Returns the byte count; nil when nothing is ready; 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> Int?
    /// Writes from `bytes`. Returns how many bytes were taken (0 when the socket would block).
    func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) -> Int
    /// Closes the connection; further calls fail.
    func close()
    /// Completes a connection started by a ``StreamDialer``: call it when the poller reports the
    /// handle writable. Returns true once connected, false while the connect is still in
    /// progress; throws when the connect failed (refused, unreachable, timed out).
    func finishConnecting() throws(IOError) -> Bool
}

extension StreamConnection {
    /// A connection that is connected from the start (accepted, or a fake) has nothing to finish.
    public func finishConnecting() throws(IOError) -> Bool { true }
}

/// Opens outgoing stream connections (TCP on Linux), non-blocking: the connection it returns may
/// still be connecting; wait for writable, then call ``StreamConnection/finishConnecting()``.
public protocol StreamDialer: AnyObject {
    /// Starts connecting to `endpoint`.
    func connect(to endpoint: Endpoint) throws(IOError) -> any StreamConnection
}

/// A listening stream socket (a TCP listener on Linux), non-blocking.
public protocol StreamListener: Pollable {
    /// The local address the listener is bound to.
    var localEndpoint: Endpoint { get }
    /// Accepts one pending connection; nil when none is waiting.
    func accept() throws(IOError) -> (any StreamConnection)?
}

/// A UDP socket that can also send runs of equal-sized datagrams in one call (UDP GSO) and
/// receive runs that the kernel coalesced (UDP GRO).
public protocol SegmentedDatagramSocket: DatagramSocket {
    /// True when segmented sends go out as one GSO send (else they are split into datagrams).
    var udpGSOActive: Bool { get }
    /// True when receives may return several datagrams coalesced in one buffer.
    var udpGROActive: Bool { get }
    /// Sends `buffers[i]`, datagrams of `segmentSizes[i]` bytes back to back (the last may be
    /// shorter), to `destinations[i]`. Returns how many buffers were consumed.
    func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) -> Int
    /// Receives buffers, each one datagram or a coalesced run: `segmentSizes[i]` is the size of
    /// each datagram in `buffers[i]` (the last may be shorter). Returns how many were filled.
    func receive(
        into buffers: UnsafeMutableBufferPointer<PacketBuffer>, sources: UnsafeMutableBufferPointer<Endpoint>,
        segmentSizes: UnsafeMutableBufferPointer<Int>
    ) throws(IOError) -> Int
}

/// A thread started by a ``ThreadStarter``.
public protocol StartedThread: Sendable {
    /// Waits until the thread's body has returned.
    func join()
}

/// Starts the daemon's long-lived threads (data plane, handshakes). Linux: POSIX threads.
public protocol ThreadStarter: Sendable {
    /// Starts `body` on a new thread named `name` (at most 15 bytes) with a stack of
    /// `stackSize` bytes; nil when the system refused a thread.
    func start(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) -> (any StartedThread)?
}
