// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// One datagram on a ``FakeNetwork``.
public struct Datagram: Sendable, CustomStringConvertible {
    /// The bytes, exactly as sent.
    public var bytes: [UInt8]
    /// The sender's endpoint.
    public var source: Endpoint
    /// Where it goes.
    public var destination: Endpoint
    /// When it was sent.
    public var sentAt: Instant
    /// When it arrives.
    public var deliverAt: Instant
    /// Order of sending, the tie-break between datagrams due at the same instant.
    public var sequence: Int

    /// The message type from the first byte, if it is one of WireGuard's four.
    public var messageType: MessageType? {
        bytes.withUnsafeBytes { Wire.messageType($0) }
    }

    public var description: String {
        "\(messageType.map { "\($0)" } ?? "?")[\(bytes.count)] \(source) → \(destination) @\(deliverAt)"
    }
}

/// How a ``FakeNetwork`` mistreats the datagrams it carries. Probabilities are in 0...1.
public struct Impairment: Sendable {
    /// Probability that a datagram is lost.
    public var loss: Double
    /// Probability that a datagram arrives twice.
    public var duplication: Double
    /// Probability that a datagram is held back by ``reorderDelay`` (so later ones overtake it).
    public var reordering: Double
    /// Base one-way delay.
    public var delay: Duration
    /// Uniform extra delay in 0...jitter (reorders datagrams closer together than this).
    public var jitter: Duration
    /// The hold-back of a reordered datagram.
    public var reorderDelay: Duration

    public init(loss: Double = 0, duplication: Double = 0, reordering: Double = 0, delay: Duration = .milliseconds(1),
                jitter: Duration = .zero, reorderDelay: Duration = .milliseconds(20)) {
        self.loss = loss
        self.duplication = duplication
        self.reordering = reordering
        self.delay = delay
        self.jitter = jitter
        self.reorderDelay = reorderDelay
    }

    /// A perfect network with 1 ms of delay.
    public static let none = Impairment()
}

/// An in-memory network that carries datagrams between endpoints with loss, duplication,
/// reordering and delay drawn from a ``SeededEntropy``, so every run is the same. No sockets.
///
/// Tests can also look at everything sent (``log``), lose chosen datagrams (``filter``), and
/// inject their own (``inject(_:from:to:at:)``). Not thread-safe.
public final class FakeNetwork {
    /// The impairment applied to each datagram sent from now on.
    public var impairment: Impairment
    /// Decides the fate of each datagram before the impairment: return false to lose it.
    public var filter: ((Datagram) -> Bool)?
    /// Whether ``log`` records every datagram sent.
    public var recording: Bool
    /// Every datagram handed to ``send(_:from:to:now:)`` (when ``recording``), lost ones included.
    public private(set) var log: [Datagram] = []
    /// Datagrams lost by the filter or the impairment.
    public private(set) var lostCount = 0
    /// Extra copies made by duplication.
    public private(set) var duplicatedCount = 0
    /// Copies held back by ``Impairment/reorderDelay``.
    public private(set) var reorderedCount = 0
    /// Datagrams whose destination no peer listened on.
    public var undeliverableCount = 0

    private var entropy: SeededEntropy
    private var inFlight: [Datagram] = []
    private var sequence = 0

    public init(seed: UInt64, impairment: Impairment = .none, recording: Bool = true) {
        entropy = SeededEntropy(seed: seed)
        self.impairment = impairment
        self.recording = recording
    }

    /// Datagrams sent and not yet delivered.
    public var inFlightCount: Int { inFlight.count }

    /// When the next datagram arrives, or nil when none is in flight.
    public var nextDeliveryTime: Instant? { inFlight.first?.deliverAt }

    /// When the last datagram in flight arrives, or nil when none is.
    public var inFlightLatest: Instant? { inFlight.last?.deliverAt }

    /// Sends `bytes` from `source` to `destination` at `now`, through the filter and impairment.
    public func send(_ bytes: [UInt8], from source: Endpoint, to destination: Endpoint, now: Instant) {
        var datagram = Datagram(
            bytes: bytes, source: source, destination: destination, sentAt: now, deliverAt: now, sequence: 0)
        if recording { log.append(datagram) }
        if let filter, !filter(datagram) {
            lostCount += 1
            return
        }
        if chance(impairment.loss) {
            lostCount += 1
            return
        }
        let copies = chance(impairment.duplication) ? 2 : 1
        if copies == 2 { duplicatedCount += 1 }
        for _ in 0..<copies {
            datagram.deliverAt = now + impairment.delay + uniform(upTo: impairment.jitter)
            if chance(impairment.reordering) {
                datagram.deliverAt = datagram.deliverAt + impairment.reorderDelay
                reorderedCount += 1
            }
            enqueue(datagram)
        }
    }

    /// Puts `bytes` on the wire as if `source` had sent them, arriving at `at`, with no filter
    /// or impairment (replays, forgeries, floods).
    public func inject(_ bytes: [UInt8], from source: Endpoint, to destination: Endpoint, at: Instant) {
        enqueue(Datagram(bytes: bytes, source: source, destination: destination, sentAt: at, deliverAt: at, sequence: 0))
    }

    /// Removes and returns, in arrival order, every datagram due at or before `now`.
    public func takeDue(now: Instant) -> [Datagram] {
        var count = 0
        while count < inFlight.count && inFlight[count].deliverAt <= now { count += 1 }
        let due = Array(inFlight[0..<count])
        inFlight.removeFirst(count)
        return due
    }

    /// Loses every datagram in flight.
    public func dropAllInFlight() {
        lostCount += inFlight.count
        inFlight.removeAll()
    }

    /// Forgets the log.
    public func clearLog() { log.removeAll() }

    private func enqueue(_ datagram: Datagram) {
        var datagram = datagram
        datagram.sequence = sequence
        sequence += 1
        // Keep `inFlight` sorted by (deliverAt, sequence): insert after every datagram due no later.
        var low = 0
        var high = inFlight.count
        while low < high {
            let mid = (low + high) / 2
            if inFlight[mid].deliverAt <= datagram.deliverAt { low = mid + 1 } else { high = mid }
        }
        inFlight.insert(datagram, at: low)
    }

    private func chance(_ probability: Double) -> Bool {
        guard probability > 0 else { return false }
        guard probability < 1 else { return true }
        return Double(entropy.next(below: 1 << 53)) < probability * Double(UInt64(1) << 53)
    }

    private func uniform(upTo limit: Duration) -> Duration {
        let nanoseconds = limit.nanosecondsClamped
        guard nanoseconds > 0 else { return .zero }
        return .nanoseconds(Int64(entropy.next(below: UInt64(nanoseconds) + 1)))
    }
}

@available(*, unavailable)
extension FakeNetwork: Sendable {}
