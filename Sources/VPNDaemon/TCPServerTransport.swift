// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore

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
