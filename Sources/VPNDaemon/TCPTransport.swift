// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore

/// Shared machinery of the TCP transports: links by token and by remote endpoint, framing on
/// send, deframing on receive.
public class TCPTransportBase {
    let logger: Logger
    let maxFrame: Int
    var poller: (any Poller)?
    var tokenBase: UInt64 = 0
    var nextToken: UInt64 = 1
    var linksByToken: [UInt64: StreamLink] = [:]
    var linksByRemote: [Endpoint: StreamLink] = [:]
    /// The time of the event being handled (transports learn it in handle and tick).
    var lastNow: Instant = .zero
    private let scratchSlab: PacketSlab
    private let scratch: UnsafeMutableBufferPointer<PacketBuffer>
    private let scratchSources: UnsafeMutableBufferPointer<Endpoint>
    /// The link whose messages the last receive returned, until ``finishBatch(_:)``.
    private var batchLink: StreamLink?
    /// The link being read in batches for one readiness event (its next receive continues).
    private var drainingToken: UInt64?
    var events = TransportEventQueue(capacity: 64)
    /// Messages for a destination with no open connection.
    private var noConnection: UInt64 = 0
    /// Messages dropped because their connection's send queue was full.
    private var queueFull: UInt64 = 0
    /// Open connections that delivered an authenticated message.
    private(set) var authenticatedCount = 0

    public let headroom = TransportData.tcpHeadroom

    init(maxFrame: Int, logger: Logger) {
        self.maxFrame = maxFrame
        self.logger = logger
        scratchSlab = PacketSlab(slotSize: PacketSlab.slotSize(payload: maxFrame), slotCount: Self.receivePoolSize)
        scratch = .allocate(capacity: Self.receivePoolSize)
        for i in 0..<Self.receivePoolSize {
            (scratch.baseAddress! + i).initialize(to: scratchSlab.buffer(i, headroom: 0))
        }
        scratchSources = .allocate(capacity: Self.receivePoolSize)
        scratchSources.initialize(repeating: .none)
    }

    deinit {
        scratch.deallocate()
        scratchSources.deallocate()
    }

    public var counters: TransportCounters { TransportCounters(noConnection: noConnection, streamQueueFull: queueFull) }

    public func nextEvent() -> TransportEvent? { events.next() }

    /// Received messages held at once, for coalescing before the tun write.
    static let receivePoolSize = 64

    func add(_ connection: any StreamConnection, connecting: Bool) throws(IOError) -> StreamLink {
        let token = tokenBase + nextToken
        nextToken += 1
        let link = StreamLink(connection: connection, token: token, maxFrame: maxFrame, connecting: connecting)
        link.openedAt = lastNow
        let events: PollEvents = connecting ? [.readable, .writable] : .readable
        link.watchingWritable = connecting
        do throws(IOError) {
            try poller?.register(connection.pollHandle, token: token, events: events)
        } catch {
            connection.close()
            throw error
        }
        linksByToken[token] = link
        linksByRemote[link.remote] = link
        return link
    }

    func remove(_ link: StreamLink, why: String) {
        poller?.unregister(link.connection.pollHandle)
        link.connection.close()
        linksByToken[link.token] = nil
        if linksByRemote[link.remote] === link { linksByRemote[link.remote] = nil }
        if link.authenticated { authenticatedCount -= 1 }
        linkClosed(link, why: why)
    }

    /// Called after a link is gone; subclasses redial or forget it.
    func linkClosed(_ link: StreamLink, why: String) {}
    /// Called when a dialled link completes its connect.
    func linkConnected(_ link: StreamLink) {}
    /// Called once per link, when it delivers its first authenticated message.
    func linkAuthenticated(_ link: StreamLink) {}

    /// Reads one batch from `link` for `event`: the first call for an event finishes a connect
    /// and flushes queued bytes, then each call copies the frames of up to one read into the
    /// scratch pool.
    func receive(from link: StreamLink, event: PollEvent) -> ReceivedBatch {
        let continuing = drainingToken == link.token
        drainingToken = nil
        batchLink = nil
        do throws(IOError) {
            if !continuing {
                if link.connecting {
                    guard event.events.contains(.writable) || event.events.contains(.hangup) else { return .empty }
                    guard try link.connection.finishConnecting() else { return .empty }
                    link.connecting = false
                    linkConnected(link)
                }
                if event.events.contains(.writable) || link.watchingWritable {
                    if try link.flush(), link.watchingWritable {
                        link.watchingWritable = false
                        try poller?.modify(link.connection.pollHandle, token: link.token, events: .readable)
                    }
                }
                guard event.events.contains(.readable) || event.events.contains(.hangup) else { return .empty }
                link.startReading()
            }
            var count = 0
            let outcome = try link.receive(into: scratch, count: &count)
            for i in 0..<count { scratchSources[i] = link.remote }
            var more = false
            switch outcome {
            case .more:
                more = true
                drainingToken = link.token
                batchLink = link
            case .open:
                batchLink = link
            case .closed:
                remove(link, why: "closed by peer")
            case .invalid(let reason):
                events.append(.invalidStream(link.remote, reason))
                remove(link, why: Self.invalidWhy(reason))
            }
            return ReceivedBatch(
                messages: UnsafeMutableBufferPointer(rebasing: scratch[0..<count]),
                sources: UnsafeBufferPointer(rebasing: scratchSources[0..<count]), more: more, stream: true)
        } catch {
            remove(link, why: error.description)
            return .empty
        }
    }

    public func finishBatch(_ verdict: BatchVerdict) {
        guard let link = batchLink else { return }
        batchLink = nil
        switch verdict {
        case .unauthenticated:
            break
        case .authenticated:
            // The bookkeeping runs once per connection.
            guard !link.authenticated else { return }
            link.authenticated = true
            authenticatedCount += 1
            linkAuthenticated(link)
        case .malformed(let reason):
            // Over a stream there is no excuse for a malformed message: close.
            drainingToken = nil
            remove(link, why: Self.invalidWhy(reason))
        }
    }

    private static func invalidWhy(_ reason: DropReason) -> String {
        "invalid frame or message, \(reason) (closing this connection only)"
    }

    public func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        for i in 0..<buffers.count {
            guard let link = linksByRemote[destinations[i]], !link.connecting else {
                noConnection &+= 1
                continue
            }
            var buffer = buffers[i]
            TCPFramer.prependHeader(to: &buffer)
            if !link.enqueue(UnsafeRawBufferPointer(buffer.bytes)) { queueFull &+= 1 }
        }
        // One write per connection for the whole batch.
        for link in linksByToken.values where link.hasQueuedBytes && !link.connecting && !link.watchingWritable {
            do throws(IOError) {
                if try !link.flush() {
                    link.watchingWritable = true
                    try poller?.modify(link.connection.pollHandle, token: link.token, events: [.readable, .writable])
                }
            } catch {
                remove(link, why: error.description)
            }
        }
    }
}

/// The server side of the TCP transport: accepts connections; each is named by its remote
/// endpoint, which the tunnel learns from the first authenticated message as with UDP.
///
/// Admission: opening a connection costs an attacker nothing, so a connection earns its place
/// by an authenticated message (a transport-data message or keepalive that a session opened).
/// Until then it is *unauthenticated*: it has ``unauthenticatedDeadline`` to authenticate or is
/// closed; each source address may hold at most ``unauthenticatedPerSource`` of them (a further
/// one is refused at accept); when all ``maximumConnections`` slots are taken, the oldest
/// unauthenticated connection makes room, and when every slot is authenticated the newcomer is
/// refused. An authenticated connection is never closed for a newcomer.
public final class TCPServerTransport: TCPTransportBase, Transport {
    private let listener: any StreamListener
    /// At most this many connections at once.
    public let maximumConnections: Int
    /// How long a new connection has to deliver an authenticated message.
    public let unauthenticatedDeadline: Duration
    /// At most this many unauthenticated connections per source address (port ignored).
    public let unauthenticatedPerSource: Int

    /// The default ``unauthenticatedDeadline``: 10 s. A real client authenticates within one
    /// round trip of its handshake, but the handshake itself may need a retry, 5 to 5.33 s after
    /// the first initiation (REKEY_TIMEOUT plus jitter): under load the first one is answered
    /// with a cookie reply, and only the retry carries mac2. A deadline of 5 s would close such a
    /// connection just as the retry arrives. Against floods the eviction rule works, not this.
    public static let defaultUnauthenticatedDeadline: Duration = .seconds(10)

    public init(
        listener: any StreamListener, maxFrame: Int, logger: Logger, maximumConnections: Int = 256,
        unauthenticatedDeadline: Duration = TCPServerTransport.defaultUnauthenticatedDeadline,
        unauthenticatedPerSource: Int = 8
    ) {
        self.listener = listener
        self.maximumConnections = maximumConnections
        self.unauthenticatedDeadline = unauthenticatedDeadline
        self.unauthenticatedPerSource = unauthenticatedPerSource
        super.init(maxFrame: maxFrame, logger: logger)
    }

    public var nextDeadline: Instant? {
        guard let oldest = oldestUnauthenticated else { return acceptResumeAt }
        let expiry = oldest.openedAt + unauthenticatedDeadline
        return acceptResumeAt.map { min($0, expiry) } ?? expiry
    }
    public var localPort: UInt16? { listener.localEndpoint.port }
    private var acceptResumeAt: Instant?
    private var acceptWarnedAt: Instant?

    /// Unauthenticated connections in accept order (so also in deadline order); see StreamLink.
    private var oldestUnauthenticated: StreamLink?
    private weak var newestUnauthenticated: StreamLink?
    /// Unauthenticated connections per source address (an Endpoint with port 0).
    private var unauthenticatedBySource: [Endpoint: Int] = [:]
    private var acceptedCount: UInt64 = 0
    private var evicted: UInt64 = 0
    private var expired: UInt64 = 0
    private var refusedFull: UInt64 = 0
    private var refusedSourceCap: UInt64 = 0

    /// Connections accepted per listener event, at most: a flood of connects cannot hold the
    /// loop (the listener stays readable, so the rest come on the next iteration).
    static let acceptsPerEvent = 64

    public var tcpStatus: TCPConnectionStatus? {
        TCPConnectionStatus(
            open: linksByToken.count, authenticated: authenticatedCount, accepted: acceptedCount, evicted: evicted,
            expired: expired, refusedFull: refusedFull, refusedSourceCap: refusedSourceCap)
    }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        self.poller = poller
        self.tokenBase = tokenBase
        try poller.register(listener.pollHandle, token: tokenBase, events: .readable)
    }

    public func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch {
        lastNow = now
        if event.token == tokenBase {
            for _ in 0..<Self.acceptsPerEvent {
                let accepted: (any StreamConnection)?
                do throws(IOError) {
                    accepted = try listener.accept()
                } catch {
                    // Out of descriptors or buffers: the tunnel keeps running; stop accepting
                    // for a second instead of spinning on a listener that stays readable.
                    if acceptWarnedAt.map({ now - $0 >= .seconds(10) }) ?? true {
                        logger.warning("TCP: accepting connections failed: \(error); pausing accepts for 1 s")
                        acceptWarnedAt = now
                    }
                    poller?.unregister(listener.pollHandle)
                    acceptResumeAt = now + .seconds(1)
                    return .empty
                }
                guard let connection = accepted else { break }
                guard admit(connection) else {
                    connection.close()
                    continue
                }
                logger.debug("TCP: accepted \(connection.remoteEndpoint)")
                let link = try add(connection, connecting: false)
                acceptedCount &+= 1
                appendUnauthenticated(link)
            }
            return .empty
        }
        guard let link = linksByToken[event.token] else { return .empty }
        return receive(from: link, event: event)
    }

    public func tick(now: Instant) throws(IOError) {
        lastNow = now
        // Oldest first, so the first one still within its deadline ends the loop.
        while let oldest = oldestUnauthenticated, oldest.openedAt + unauthenticatedDeadline <= now {
            expired &+= 1
            remove(oldest, why: "nothing authenticated within the deadline")
        }
        if let resume = acceptResumeAt, resume <= now {
            acceptResumeAt = nil
            try poller?.register(listener.pollHandle, token: tokenBase, events: .readable)
        }
    }

    /// Decides whether a new connection gets a slot, making room if an unauthenticated one can
    /// give it up. False: refuse it (the caller closes it).
    private func admit(_ connection: any StreamConnection) -> Bool {
        let remote = connection.remoteEndpoint
        if unauthenticatedBySource[Self.sourceKey(remote), default: 0] >= unauthenticatedPerSource {
            refusedSourceCap &+= 1
            logger.debug(
                "TCP: refusing \(remote): its address already has \(unauthenticatedPerSource) unauthenticated connections")
            return false
        }
        guard linksByToken.count >= maximumConnections else { return true }
        guard let oldest = oldestUnauthenticated else {
            // Every slot holds an authenticated connection: those are never evicted for a newcomer.
            refusedFull &+= 1
            logger.debug("TCP: refusing \(remote): all \(maximumConnections) connections are authenticated")
            return false
        }
        evicted &+= 1
        logger.debug("TCP: all \(maximumConnections) slots taken; closing the oldest unauthenticated one, \(oldest.remote)")
        remove(oldest, why: "evicted for a new connection (it had not authenticated)")
        return true
    }

    /// The source address of `endpoint` (its port cleared), the key of the per-source cap.
    private static func sourceKey(_ endpoint: Endpoint) -> Endpoint {
        var key = endpoint
        key.port = 0
        return key
    }

    private func appendUnauthenticated(_ link: StreamLink) {
        link.onUnauthenticatedList = true
        link.olderUnauthenticated = newestUnauthenticated
        if let newest = newestUnauthenticated {
            newest.newerUnauthenticated = link
        } else {
            oldestUnauthenticated = link
        }
        newestUnauthenticated = link
        unauthenticatedBySource[Self.sourceKey(link.remote), default: 0] += 1
    }

    private func unlinkUnauthenticated(_ link: StreamLink) {
        guard link.onUnauthenticatedList else { return }
        link.onUnauthenticatedList = false
        let older = link.olderUnauthenticated
        let newer = link.newerUnauthenticated
        if let older { older.newerUnauthenticated = newer } else { oldestUnauthenticated = newer }
        if let newer { newer.olderUnauthenticated = older } else { newestUnauthenticated = older }
        link.olderUnauthenticated = nil
        link.newerUnauthenticated = nil
        let key = Self.sourceKey(link.remote)
        if let count = unauthenticatedBySource[key], count > 1 {
            unauthenticatedBySource[key] = count - 1
        } else {
            unauthenticatedBySource[key] = nil
        }
    }

    override func linkAuthenticated(_ link: StreamLink) {
        unlinkUnauthenticated(link)
        logger.debug("TCP: connection from \(link.remote) authenticated")
    }

    override func linkClosed(_ link: StreamLink, why: String) {
        unlinkUnauthenticated(link)
        logger.debug("TCP: connection from \(link.remote) closed: \(why)")
    }
}

/// The client side of the TCP transport: one connection to the server, redialled with a
/// capped backoff when it breaks; each new connection is reported (``TransportEvent/connected(_:)``)
/// so that the data plane can start a fresh handshake.
public final class TCPClientTransport: TCPTransportBase, Transport {
    private let dialer: any StreamDialer
    private let remote: Endpoint
    private var link: StreamLink?
    private var redialAt: Instant? = .zero
    private var backoff: Duration = .milliseconds(250)
    private var warnedAt: Instant?
    private var connects: UInt64 = 0
    static let maximumBackoff: Duration = .seconds(4)

    public var tcpStatus: TCPConnectionStatus? {
        TCPConnectionStatus(open: linksByToken.count, authenticated: authenticatedCount, connects: connects)
    }

    public init(dialer: any StreamDialer, remote: Endpoint, maxFrame: Int, logger: Logger) {
        self.dialer = dialer
        self.remote = remote
        super.init(maxFrame: maxFrame, logger: logger)
    }

    public var nextDeadline: Instant? { redialAt }
    public var localPort: UInt16? { nil }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        self.poller = poller
        self.tokenBase = tokenBase
    }

    public func receive(_ event: PollEvent, now: Instant) throws(IOError) -> ReceivedBatch {
        lastNow = now
        guard let link = linksByToken[event.token] else { return .empty }
        return receive(from: link, event: event)
    }

    public func tick(now: Instant) throws(IOError) {
        lastNow = now
        guard link == nil, let due = redialAt, due <= now else { return }
        redialAt = nil
        do throws(IOError) {
            let connection = try dialer.connect(to: remote)
            link = try add(connection, connecting: true)
        } catch {
            scheduleRedial(now: now, why: error.description)
        }
    }

    override func linkConnected(_ link: StreamLink) {
        logger.info("TCP: connected to \(remote)")
        connects &+= 1
        backoff = .milliseconds(250)
        warnedAt = nil
        events.append(.connected(remote))
    }

    override func linkClosed(_ closed: StreamLink, why: String) {
        guard closed === link else { return }
        link = nil
        scheduleRedial(now: nil, why: why)
    }

    private func scheduleRedial(now: Instant?, why: String) {
        if warnedAt == nil {
            logger.warning("TCP: connection to \(remote) failed: \(why); redialling (backoff up to \(Self.maximumBackoff))")
            warnedAt = now ?? .zero
        } else {
            logger.debug("TCP: redial to \(remote) failed: \(why)")
        }
        // `now` is unknown inside a poll callback; the loop's next tick compares against the real clock.
        redialAt = (now ?? lastNow) + backoff
        backoff = min(backoff * 2, Self.maximumBackoff)
    }

}
