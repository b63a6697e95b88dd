// SPDX-License-Identifier: MIT

/// Every message dropped (or sent a slower way) below the tunnel, whichever layer saw it: the
/// transport, a TCP connection's queue, the socket. One value for `vpnd show`; the layers keep
/// their own counts and the transport adds them up when asked.
public struct TransportCounters: Sendable, Equatable {
    /// Messages dropped because the socket would block (its send buffer full), as a full NIC
    /// queue drops, including the rest of a run cut short.
    public var socketFull: UInt64
    /// Datagrams the kernel refused for their destination (unreachable, not permitted, too big,
    /// IPv6 on an IPv4 socket).
    public var socketRefused: UInt64
    /// TCP: messages for a destination with no open connection (or one still connecting).
    public var noConnection: UInt64
    /// TCP: messages dropped because the connection's send queue was full.
    public var streamQueueFull: UInt64
    /// Segmented (UDP GSO) sends the kernel refused whole and that went out as single datagrams.
    public var gsoFallbacks: UInt64

    public init(
        socketFull: UInt64 = 0, socketRefused: UInt64 = 0, noConnection: UInt64 = 0, streamQueueFull: UInt64 = 0,
        gsoFallbacks: UInt64 = 0
    ) {
        self.socketFull = socketFull
        self.socketRefused = socketRefused
        self.noConnection = noConnection
        self.streamQueueFull = streamQueueFull
        self.gsoFallbacks = gsoFallbacks
    }

    /// Each counter with its `vpnd show` name, in a fixed order.
    public var named: KeyValuePairs<String, UInt64> {
        [
            "socket-full": socketFull, "socket-refused": socketRefused, "no-connection": noConnection,
            "stream-queue-full": streamQueueFull, "gso-fallbacks": gsoFallbacks,
        ]
    }

    /// The sum of two sets of counts (a transport's own and its socket's).
    public static func + (a: TransportCounters, b: TransportCounters) -> TransportCounters {
        TransportCounters(
            socketFull: a.socketFull &+ b.socketFull, socketRefused: a.socketRefused &+ b.socketRefused,
            noConnection: a.noConnection &+ b.noConnection, streamQueueFull: a.streamQueueFull &+ b.streamQueueFull,
            gsoFallbacks: a.gsoFallbacks &+ b.gsoFallbacks)
    }
}
