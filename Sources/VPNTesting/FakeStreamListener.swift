// SPDX-License-Identifier: MIT
import VPNBasics

/// A listening socket on a ``FakeStreamNetwork``: readable while dialled connections wait to be
/// accepted.
///
/// Not thread-safe; owned by one test thread or data-plane thread.
public final class FakeStreamListener: StreamListener, FakePollable {
    public let localEndpoint: Endpoint
    public let pollHandle: PollHandle
    private let network: FakeStreamNetwork
    private var pending: [FakeStreamConnection] = []
    /// Every connection handed out by ``accept()``, oldest first (the server ends).
    public private(set) var accepted: [FakeStreamConnection] = []
    /// Thrown by the next ``accept()``, then cleared.
    public var nextAcceptError: IOError?

    /// Listens at `endpoint` on `network`.
    public init(network: FakeStreamNetwork, endpoint: Endpoint) throws(IOError) {
        self.network = network
        localEndpoint = endpoint
        pollHandle = FakeHandleTable.allocate()
        try network.bind(self, at: endpoint)
        FakeHandleTable.attach(self)
    }

    deinit {
        network.unbind(localEndpoint)
        FakeHandleTable.detach(pollHandle)
    }

    func enqueue(_ connection: FakeStreamConnection) { pending.append(connection) }

    /// Connections waiting to be accepted.
    public var pendingCount: Int { pending.count }

    public var readiness: PollEvents { pending.isEmpty ? [] : .readable }

    public func accept() throws(IOError) -> (any StreamConnection)? {
        if let error = nextAcceptError {
            nextAcceptError = nil
            throw error
        }
        guard !pending.isEmpty else { return nil }
        let connection = pending.removeFirst()
        accepted.append(connection)
        return connection
    }
}

@available(*, unavailable)
extension FakeStreamListener: Sendable {}
