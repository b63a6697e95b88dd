// SPDX-License-Identifier: MIT
import VPNBasics

/// Opens connections on a ``FakeStreamNetwork``, like a non-blocking TCP connect.
///
/// A connect to an endpoint with no listener, or one of the next ``refuseNext``, returns a
/// connection that reports writable and hangup and whose `finishConnecting` throws ECONNREFUSED.
/// Otherwise the connection is connected at once, unless ``holdConnects`` keeps it connecting
/// until ``FakeStreamConnection/completeConnect()``.
///
/// Not thread-safe; owned by one test thread or data-plane thread.
public final class FakeStreamDialer: StreamDialer {
    private let network: FakeStreamNetwork
    /// The local address of dialled connections (each gets its own port).
    public let localAddress: Endpoint
    /// Refuse this many of the next connects.
    public var refuseNext = 0
    /// Thrown by the next ``connect(to:)`` itself (as a synchronous failure), then cleared.
    public var nextConnectError: IOError?
    /// Keep new connections connecting until the test completes them.
    public var holdConnects = false
    /// Stamps ``attempts`` with this clock's time.
    public var clock: (any Clock)?
    /// Every connection dialled, oldest first (the client ends).
    public private(set) var dialled: [FakeStreamConnection] = []
    /// When each connect was attempted (needs ``clock``).
    public private(set) var attempts: [Instant] = []

    /// A dialer whose connections come from `localAddress` (the port is ignored).
    public init(network: FakeStreamNetwork, localAddress: Endpoint, clock: (any Clock)? = nil) {
        self.network = network
        self.localAddress = localAddress
        self.clock = clock
    }

    public func connect(to endpoint: Endpoint) throws(IOError) -> any StreamConnection {
        if let clock { attempts.append(clock.now()) }
        if let error = nextConnectError {
            nextConnectError = nil
            throw error
        }
        var local = localAddress
        local.port = network.ephemeralPort()
        let connection: FakeStreamConnection
        if refuseNext > 0 || network.listener(at: endpoint) == nil {
            refuseNext = max(0, refuseNext - 1)
            connection = .refused(local: local, remote: endpoint)
        } else {
            let listener = network.listener(at: endpoint)!
            let ends = FakeStreamConnection.pair(
                client: local, server: endpoint, capacity: network.pipeCapacity, writeChunk: network.writeChunk,
                readChunk: network.readChunk, clientState: holdConnects ? .connecting : .connected)
            if holdConnects {
                ends.client.pendingAccept = (listener, ends.server)
            } else {
                listener.enqueue(ends.server)
            }
            connection = ends.client
        }
        dialled.append(connection)
        return connection
    }
}

@available(*, unavailable)
extension FakeStreamDialer: Sendable {}
