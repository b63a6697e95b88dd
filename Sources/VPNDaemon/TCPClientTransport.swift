// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore

/// The client side of the TCP transport: one connection to the server, redialled with a
/// capped backoff when it breaks; each new connection is reported (``TransportEvent/connected(_:)``)
/// so that the session goes on over it (``Tunnel/transportConnected(_:now:)``).
public final class TCPClientTransport: TCPTransportBase, Transport {
    private let dialer: any StreamDialer
    private var remote: Endpoint
    private var link: StreamLink?
    private var redialAt: Instant? = .zero
    private var backoff: Duration = .milliseconds(250)
    private var warnedAt: Instant?
    private var connects: UInt64 = 0
    static let maximumBackoff: Duration = .seconds(4)
    /// Whether a connection is wanted: always for `Transport = tcp`; inside a ``DualTransport``,
    /// only while the session is on TCP (``Transport/useCarrier(_:toward:)``). Once unwanted, the
    /// connection stays open for ``closeGrace`` (what the server sent over it still arrives).
    var dialing = true {
        didSet {
            guard dialing != oldValue else { return }
            if dialing {
                closeAt = nil
                if link == nil {
                    redialAt = lastNow
                    backoff = .milliseconds(250)
                    warnedAt = nil
                }
            } else {
                redialAt = nil
                if link != nil { closeAt = lastNow + Self.closeGrace }
            }
        }
    }
    /// When an unwanted connection closes.
    private var closeAt: Instant?
    /// How long a connection stays open after the session moved back to UDP.
    static let closeGrace: Duration = .seconds(5)

    /// Dials `remote` from now on (the peer's address changed); an open connection elsewhere closes.
    func retarget(_ newRemote: Endpoint) {
        guard newRemote != remote else { return }
        remote = newRemote
        if let link { remove(link, why: "the peer moved to \(newRemote)") }
    }

    public var tcpStatus: TCPConnectionStatus? {
        TCPConnectionStatus(open: linksByToken.count, authenticated: authenticatedCount, connects: connects)
    }

    public init(dialer: any StreamDialer, remote: Endpoint, maxFrame: Int, logger: Logger) {
        self.dialer = dialer
        self.remote = remote
        super.init(maxFrame: maxFrame, logger: logger)
    }

    public var nextDeadline: Instant? { dialing ? redialAt : closeAt }
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
        if let due = closeAt, due <= now {
            closeAt = nil
            if let link { remove(link, why: "the session moved back to UDP") }
        }
        guard dialing, link == nil, let due = redialAt, due <= now else { return }
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
        guard dialing else {
            logger.info("TCP: connection to \(remote) closed: \(why)")
            return
        }
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
