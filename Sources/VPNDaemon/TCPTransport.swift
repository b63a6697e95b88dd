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
    /// The tag of the connections' endpoints: ``Carrier/tcp`` inside a ``DualTransport``, else the
    /// untagged default.
    var carrier: Carrier = .udp

    /// The length prefix is written into the connection's send queue, not in front of the message.
    public let headroom = TransportData.headroom

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
        let link = StreamLink(
            connection: connection, token: token, maxFrame: maxFrame, connecting: connecting, carrier: carrier)
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
        if link.authenticated {
            authenticatedCount -= 1
            events.append(.streamClosed(link.remote))
        }
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
            if !link.enqueueFramed(UnsafeRawBufferPointer(buffers[i].bytes)) { queueFull &+= 1 }
        }
        flushQueued()
    }

    /// Runs of equal-sized messages (from the GSO planner, inside a ``DualTransport``): each message
    /// framed into its connection's queue, then one write per connection.
    public func sendSegmented(
        _ buffers: UnsafeBufferPointer<PacketBuffer>, segmentSizes: UnsafeBufferPointer<Int>,
        to destinations: UnsafeBufferPointer<Endpoint>
    ) throws(IOError) {
        for i in 0..<buffers.count {
            let run = UnsafeRawBufferPointer(buffers[i].bytes)
            guard let link = linksByRemote[destinations[i]], !link.connecting else {
                noConnection &+= UInt64((run.count + max(segmentSizes[i], 1) - 1) / max(segmentSizes[i], 1))
                continue
            }
            let size = max(segmentSizes[i], 1)
            var offset = 0
            while offset < run.count {
                let length = min(size, run.count - offset)
                if !link.enqueueFramed(UnsafeRawBufferPointer(rebasing: run[offset..<(offset + length)])) { queueFull &+= 1 }
                offset += length
            }
        }
        flushQueued()
    }

    /// Writes what the connections queued: one write per connection for the whole batch.
    private func flushQueued() {
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
