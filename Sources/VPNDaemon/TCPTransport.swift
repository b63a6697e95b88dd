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
    /// Messages dropped because no connection leads to their destination or its queue was full.
    public private(set) var sendDrops: UInt64 = 0

    public let headroom = TransportData.tcpHeadroom

    init(maxFrame: Int, logger: Logger) {
        self.maxFrame = maxFrame
        self.logger = logger
        scratchSlab = PacketSlab(slotSize: maxFrame + 64, slotCount: Self.receivePoolSize)
        scratch = .allocate(capacity: Self.receivePoolSize)
        for i in 0..<Self.receivePoolSize {
            (scratch.baseAddress! + i).initialize(to: scratchSlab.buffer(i, headroom: 0))
        }
    }

    deinit { scratch.deallocate() }

    /// Received messages held at once, for coalescing before the tun write.
    static let receivePoolSize = 64

    func add(_ connection: any StreamConnection, connecting: Bool) throws(IOError) -> StreamLink {
        let token = tokenBase + nextToken
        nextToken += 1
        let link = StreamLink(connection: connection, token: token, maxFrame: maxFrame, connecting: connecting)
        link.lastActivity = lastNow
        linksByToken[token] = link
        linksByRemote[link.remote] = link
        let events: PollEvents = connecting ? [.readable, .writable] : .readable
        link.watchingWritable = connecting
        try poller?.register(connection.pollHandle, token: token, events: events)
        return link
    }

    func remove(_ link: StreamLink, why: String) {
        poller?.unregister(link.connection.pollHandle)
        link.connection.close()
        linksByToken[link.token] = nil
        if linksByRemote[link.remote] === link { linksByRemote[link.remote] = nil }
        linkClosed(link, why: why)
    }

    /// Called after a link is gone; subclasses redial.
    func linkClosed(_ link: StreamLink, why: String) {}
    /// Called when a dialled link completes its connect.
    func linkConnected(_ link: StreamLink) {}

    func handleLink(
        _ link: StreamLink, event: PollEvent, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Void,
        endOfBatch: () -> Void
    ) {
        do throws(IOError) {
            if link.connecting {
                guard event.events.contains(.writable) || event.events.contains(.hangup) else { return }
                guard try link.connection.finishConnecting() else { return }
                link.connecting = false
                linkConnected(link)
            }
            if event.events.contains(.writable) || link.watchingWritable {
                if try link.flush(), link.watchingWritable {
                    link.watchingWritable = false
                    try poller?.modify(link.connection.pollHandle, token: link.token, events: .readable)
                }
            }
            if event.events.contains(.readable) || event.events.contains(.hangup) {
                let outcome = try link.receive(
                    into: scratch, from: link.remote,
                    deliver: { buffer, source in
                        link.lastActivity = lastNow
                        deliver(&buffer, source)
                    },
                    endOfBatch: endOfBatch)
                switch outcome {
                case .open: break
                case .closed: remove(link, why: "closed by peer")
                case .invalid(let reason):
                    // Counted like a bad UDP datagram, so `vpnd show` sees hostile streams too.
                    tunnel.countDrop(reason)
                    remove(link, why: "invalid frame or message, \(reason) (closing this connection only)")
                }
            }
        } catch {
            remove(link, why: error.description)
        }
    }

    public func send(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        for i in 0..<buffers.count {
            guard let link = linksByRemote[destinations[i]], !link.connecting else {
                sendDrops &+= 1
                continue
            }
            var buffer = buffers[i]
            TCPFramer.prependHeader(to: &buffer)
            if !link.enqueue(UnsafeRawBufferPointer(buffer.bytes)) { sendDrops &+= 1 }
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
public final class TCPServerTransport: TCPTransportBase, Transport {
    private let listener: any StreamListener
    /// At most this many connections at once; further ones are closed at accept.
    private let maximumConnections: Int

    public init(listener: any StreamListener, maxFrame: Int, logger: Logger, maximumConnections: Int = 256) {
        self.listener = listener
        self.maximumConnections = maximumConnections
        super.init(maxFrame: maxFrame, logger: logger)
    }

    public var nextDeadline: Instant? { acceptResumeAt }
    public var localPort: UInt16? { listener.localEndpoint.port }
    private var acceptResumeAt: Instant?
    private var acceptWarnedAt: Instant?

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        self.poller = poller
        self.tokenBase = tokenBase
        try poller.register(listener.pollHandle, token: tokenBase, events: .readable)
    }

    public func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Void,
        endOfBatch: () -> Void
    ) throws(IOError) {
        lastNow = now
        if event.token == tokenBase {
            while true {
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
                    return
                }
                guard let connection = accepted else { break }
                if linksByToken.count >= maximumConnections,
                    let idlest = linksByToken.values.min(by: { $0.lastActivity < $1.lastActivity })
                {
                    // Full: the connection that has been quiet longest makes room, so silent
                    // connections can never lock a real client out (it redials if it was one).
                    logger.debug("TCP: \(maximumConnections) connections open; closing the idlest, \(idlest.remote)")
                    remove(idlest, why: "evicted for a new connection")
                }
                logger.debug("TCP: accepted \(connection.remoteEndpoint)")
                _ = try add(connection, connecting: false)
            }
            return
        }
        guard let link = linksByToken[event.token] else { return }
        handleLink(link, event: event, tunnel: tunnel, deliver: deliver, endOfBatch: endOfBatch)
    }

    public func tick(now: Instant, tunnel: Tunnel) throws(IOError) {
        lastNow = now
        if let resume = acceptResumeAt, resume <= now {
            acceptResumeAt = nil
            try poller?.register(listener.pollHandle, token: tokenBase, events: .readable)
        }
    }

    override func linkClosed(_ link: StreamLink, why: String) {
        logger.debug("TCP: connection from \(link.remote) closed: \(why)")
    }
}

/// The client side of the TCP transport: one connection to the server, redialled with a
/// capped backoff when it breaks; each new connection starts a fresh handshake.
public final class TCPClientTransport: TCPTransportBase, Transport {
    private let dialer: any StreamDialer
    private let remote: Endpoint
    private var link: StreamLink?
    private var redialAt: Instant? = .zero
    private var backoff: Duration = .milliseconds(250)
    private var justConnected = false
    private var warnedAt: Instant?
    static let maximumBackoff: Duration = .seconds(4)

    public init(dialer: any StreamDialer, remote: Endpoint, maxFrame: Int, logger: Logger) {
        self.dialer = dialer
        self.remote = remote
        super.init(maxFrame: maxFrame, logger: logger)
    }

    public var nextDeadline: Instant? { justConnected ? .zero : redialAt }
    public var localPort: UInt16? { nil }

    public func register(with poller: any Poller, tokenBase: UInt64) throws(IOError) {
        self.poller = poller
        self.tokenBase = tokenBase
    }

    public func handle(
        _ event: PollEvent, now: Instant, tunnel: Tunnel, deliver: (inout PacketBuffer, Endpoint) -> Void,
        endOfBatch: () -> Void
    ) throws(IOError) {
        lastNow = now
        guard let link = linksByToken[event.token] else { return }
        handleLink(link, event: event, tunnel: tunnel, deliver: deliver, endOfBatch: endOfBatch)
    }

    public func tick(now: Instant, tunnel: Tunnel) throws(IOError) {
        lastNow = now
        if justConnected {
            justConnected = false
            // The server may have lost our session with the old connection: start afresh.
            tunnel.restartSessions(now: now)
        }
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
        backoff = .milliseconds(250)
        warnedAt = nil
        justConnected = true
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
