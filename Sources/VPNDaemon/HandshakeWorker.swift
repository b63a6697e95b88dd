// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The handshake thread: runs the handshakes' Diffie-Hellman work (``HandshakeProcessor``) so
/// that no X25519 operation ever runs on the packet thread.
///
/// The data plane's ``Tunnel`` (built with `handshakes: .deferred(submit: worker.submit, backlog: { worker.backlog })`)
/// hands jobs over with ``submit(_:)`` after the cheap admission checks (mac1, cookies, rate
/// limit); the thread in ``run(processor:entropy:poller:)`` computes them in arrival order and
/// rings the data plane's wakeup, whose loop takes the outcomes with ``takeOutcomes()`` and
/// applies them with ``Tunnel/completeHandshake(_:now:)``. A handshake is a few times a minute,
/// not per packet: a Mutex per job is cheap here and keeps the queues simple.
///
/// Thread-safe.
public final class HandshakeWorker: Sendable {
    /// Jobs waiting at most (wireguard-go's handshake queue); a job beyond this is refused
    /// (counted as `queue-full`). The Tunnel is under load from an eighth of it (cookies and
    /// rate limits apply).
    public static let defaultCapacity = 1024

    private let capacity: Int
    private let jobs = Mutex<[HandshakeJob]>([])
    private let outcomes = Mutex<[HandshakeOutcome]>([])
    private let stopFlag = Atomic<Bool>(false)
    private let processed = Atomic<UInt64>(0)
    /// Rings the handshake thread.
    private let doorbell: any Wakeup
    /// Rings the data plane (its control wakeup) when outcomes are ready.
    private let dataPlaneWakeup: any Wakeup

    /// A worker that waits on `doorbell` and rings `dataPlaneWakeup` (the data plane's
    /// ``DataPlaneControl`` wakeup) with outcomes.
    public init(doorbell: any Wakeup, dataPlaneWakeup: any Wakeup, capacity: Int = HandshakeWorker.defaultCapacity) {
        self.doorbell = doorbell
        self.dataPlaneWakeup = dataPlaneWakeup
        self.capacity = capacity
    }

    /// Queues `job` for the handshake thread; false when `capacity` jobs are already waiting.
    /// Called on the data-plane thread.
    public func submit(_ job: HandshakeJob) -> Bool {
        let accepted = jobs.withLock { queue -> Bool in
            guard queue.count < capacity else { return false }
            queue.append(job)
            return true
        }
        if accepted { doorbell.signal() }
        return accepted
    }

    /// Jobs queued and not yet taken by the handshake thread.
    public var backlog: Int { jobs.withLock { $0.count } }

    /// The outcomes ready so far, oldest first. Called on the data-plane thread.
    public func takeOutcomes() -> [HandshakeOutcome] {
        outcomes.withLock { ready in
            if ready.isEmpty { return [] }
            defer { ready.removeAll(keepingCapacity: true) }
            return ready
        }
    }

    /// Jobs computed since start (for tests and status).
    public var processedCount: UInt64 { processed.load(ordering: .relaxed) }

    /// Computes every queued job now, on the caller's thread; returns how many. The thread's
    /// loop is built on it; tests call it directly to interleave the two sides by hand.
    @discardableResult
    public func processPending(with processor: inout HandshakeProcessor, entropy: inout some EntropySource) -> Int {
        let batch = jobs.withLock { queue -> [HandshakeJob] in
            if queue.isEmpty { return [] }
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        for job in batch {
            let outcome = processor.process(job, entropy: &entropy)
            outcomes.withLock { $0.append(outcome) }
            processed.add(1, ordering: .relaxed)
            // At once, not after the batch: the first session need not wait for a flood's tail.
            dataPlaneWakeup.signal()
        }
        return batch.count
    }

    /// The handshake thread's loop: waits on the doorbell with `poller` and computes jobs until
    /// ``requestStop()``. Returns the error that stopped it, if any.
    public func run(processor: HandshakeProcessor, entropy: some EntropySource, poller: any Poller) -> IOError? {
        var processor = processor
        var entropy = entropy
        let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 4)
        defer { events.deallocate() }
        events.initialize(repeating: PollEvent(token: 0, events: []))
        do throws(IOError) {
            try poller.register(doorbell.pollHandle, token: 1, events: .readable)
            while !stopFlag.load(ordering: .acquiring) {
                // Drain first, then look: a job queued after the look rings again, so none waits;
                // and a stop requested before the drain is seen here, not slept through.
                doorbell.drain()
                if stopFlag.load(ordering: .acquiring) { break }
                if processPending(with: &processor, entropy: &entropy) == 0 {
                    _ = try poller.wait(into: events, timeout: nil)
                }
            }
        } catch {
            return error
        }
        return nil
    }

    /// Makes ``run(processor:entropy:poller:)`` return.
    public func requestStop() {
        stopFlag.store(true, ordering: .releasing)
        doorbell.signal()
    }
}
