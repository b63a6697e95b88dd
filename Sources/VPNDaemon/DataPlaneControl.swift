// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The control plane's handle on a running ``DataPlane``: ask for a status snapshot, ask it to
/// stop. Every call is thread-safe; the data plane sees requests at its next iteration (the
/// wakeup makes that immediate).
public final class DataPlaneControl: Sendable {
    let wakeup: any Wakeup
    private let stop = Atomic<Bool>(false)
    private let wantSnapshot = Atomic<Bool>(false)
    private let snapshot = Mutex<(generation: UInt64, status: DataPlaneStatus?)>((0, nil))
    private let endpointUpdates = Mutex<[(Bytes32, Endpoint)]>([])
    private let endpoints = Mutex<(changed: Bool, byKey: [Bytes32: Endpoint])>((false, [:]))

    private let endpointsChanged: (@Sendable () -> Void)?
    private let reconfiguration = Mutex<ReconfigurationMailbox>(ReconfigurationMailbox())
    private let wantReconfiguration = Atomic<Bool>(false)
    /// The longest iteration in the snapshots since ``takeLongestLoop()`` last ran.
    private let longestLoop = Mutex<UInt64>(0)

    /// A control handle waking the data plane through `wakeup`; `endpointsChanged` is called
    /// (on the data-plane thread) when a peer's endpoint changes, so the control plane can
    /// remember it at once.
    public init(wakeup: any Wakeup, endpointsChanged: (@Sendable () -> Void)? = nil) {
        self.wakeup = wakeup
        self.endpointsChanged = endpointsChanged
    }

    /// Asks the data plane to return from ``DataPlane/run()``.
    public func requestStop() {
        stop.store(true, ordering: .releasing)
        wakeup.signal()
    }

    var stopRequested: Bool { stop.load(ordering: .acquiring) }
    var snapshotRequested: Bool { wantSnapshot.load(ordering: .relaxed) }

    func publish(_ status: DataPlaneStatus) {
        wantSnapshot.store(false, ordering: .relaxed)
        snapshot.withLock { $0 = ($0.generation &+ 1, status) }
        longestLoop.withLock { $0 = max($0, status.loop.longestNanoseconds) }
    }

    /// The longest data-plane iteration (nanoseconds) in the snapshots published since the last
    /// call, then starts over: a scrape's "maximum since the last scrape", whoever else asked
    /// for snapshots meanwhile (`vpnd show`, the watchdog). Call it after taking the snapshot.
    public func takeLongestLoop() -> UInt64 {
        longestLoop.withLock { longest in
            defer { longest = 0 }
            return longest
        }
    }

    /// Asks for a fresh snapshot and returns the generation to wait for with ``snapshot(newerThan:)``.
    public func requestSnapshot() -> UInt64 {
        let generation = snapshot.withLock { $0.generation }
        wantSnapshot.store(true, ordering: .relaxed)
        wakeup.signal()
        return generation
    }

    /// The latest snapshot if it is newer than `generation`.
    public func snapshot(newerThan generation: UInt64) -> DataPlaneStatus? {
        snapshot.withLock { $0.generation > generation ? $0.status : nil }
    }

    /// Asks the data plane to send to `endpoint` for the peer with `publicKey` (a host name that
    /// resolved to a new address).
    public func requestEndpoint(_ endpoint: Endpoint, forPeer publicKey: Bytes32) {
        endpointUpdates.withLock { $0.append((publicKey, endpoint)) }
        wakeup.signal()
    }

    func takeEndpointUpdates() -> [(Bytes32, Endpoint)] {
        endpointUpdates.withLock { updates in
            defer { updates.removeAll() }
            return updates
        }
    }

    func noteEndpoint(_ publicKey: Bytes32, _ endpoint: Endpoint) {
        endpoints.withLock {
            $0.byKey[publicKey] = endpoint
            $0.changed = true
        }
        endpointsChanged?()
    }

    /// Every peer endpoint learnt so far, if any changed since the last call (for the daemon to
    /// remember across restarts).
    public func takeChangedEndpoints() -> [Bytes32: Endpoint]? {
        endpoints.withLock { state in
            guard state.changed else { return nil }
            state.changed = false
            return state.byKey
        }
    }

    /// Asks the data plane to apply `request` (a UAPI `set=1`), or with `dryRun` only to check
    /// it and preview its AllowedIPs (``Tunnel/check(_:)``), and returns the ticket to wait for
    /// with ``reconfigurationResult(_:)``. One request at a time: the caller waits for each.
    public func requestReconfiguration(_ request: UAPISetRequest, dryRun: Bool = false) -> UInt64 {
        let ticket = reconfiguration.withLock { box in
            box.lastTicket &+= 1
            box.waiting = (box.lastTicket, request, dryRun)
            return box.lastTicket
        }
        wantReconfiguration.store(true, ordering: .releasing)
        wakeup.signal()
        return ticket
    }

    /// What applying the request of `ticket` gave, once the data plane has applied it.
    public func reconfigurationResult(_ ticket: UInt64) -> Result<TunnelReconfiguration, UAPIError>? {
        reconfiguration.withLock { box in
            guard let done = box.done, done.ticket == ticket else { return nil }
            return done.result
        }
    }

    var reconfigurationRequested: Bool { wantReconfiguration.load(ordering: .acquiring) }

    func takeReconfiguration() -> (ticket: UInt64, request: UAPISetRequest, dryRun: Bool)? {
        wantReconfiguration.store(false, ordering: .relaxed)
        return reconfiguration.withLock { box in
            defer { box.waiting = nil }
            return box.waiting
        }
    }

    func finishReconfiguration(_ ticket: UInt64, _ result: Result<TunnelReconfiguration, UAPIError>) {
        reconfiguration.withLock { $0.done = (ticket, result) }
    }

    /// The latest snapshot, however old.
    public var latestSnapshot: DataPlaneStatus? { snapshot.withLock { $0.status } }
}

private struct ReconfigurationMailbox {
    var lastTicket: UInt64 = 0
    var waiting: (ticket: UInt64, request: UAPISetRequest, dryRun: Bool)?
    var done: (ticket: UInt64, result: Result<TunnelReconfiguration, UAPIError>)?
}

/// A snapshot of a data plane for `vpnd show`: the tunnel's status and the drops below it.
/// The tunnel's fields read through (`status.peers`, `status.tcp`).
@dynamicMemberLookup
public struct DataPlaneStatus: Sendable {
    /// The tunnel: peers, their counters and drops, the TCP connections.
    public var tunnel: TunnelStatus
    /// What the transport and its socket dropped or split.
    public var transport: TransportCounters
    /// The `SO_MARK` of the underlay socket (0: none).
    public var firewallMark: UInt32
    /// The port the transport listens on now (nil: a TCP client).
    public var listenPort: UInt16?
    /// How long the data plane's iterations take (their longest since the previous snapshot).
    public var loop: LoopTiming
    /// Handshake jobs queued for the handshake thread and not yet taken by it.
    public var handshakeBacklog: Int

    public init(
        tunnel: TunnelStatus, transport: TransportCounters = TransportCounters(), firewallMark: UInt32 = 0,
        listenPort: UInt16? = nil, loop: LoopTiming = LoopTiming(), handshakeBacklog: Int = 0
    ) {
        self.tunnel = tunnel
        self.transport = transport
        self.firewallMark = firewallMark
        self.listenPort = listenPort
        self.loop = loop
        self.handshakeBacklog = handshakeBacklog
    }

    public subscript<Value>(dynamicMember keyPath: WritableKeyPath<TunnelStatus, Value>) -> Value {
        get { tunnel[keyPath: keyPath] }
        set { tunnel[keyPath: keyPath] = newValue }
    }
}
