// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The handshake thread: runs the handshakes' Diffie-Hellman work (``HandshakeProcessor``) so
/// that no X25519 operation ever runs on the packet thread.
///
/// The data plane takes the jobs its ``Tunnel`` (built with `handshakes: .deferred(capacity:)`)
/// made (``Tunnel/takeHandshakeJobs()``) and queues them with ``submit(_:)``; the thread in
/// ``run(processor:entropy:poller:)`` computes them in arrival order and rings the data plane's
/// wakeup, whose loop takes the outcomes with ``takeOutcomes()`` and applies them with
/// ``Tunnel/completeHandshake(_:now:)``. The Tunnel counts the jobs in flight (for its capacity
/// and its load); the worker only holds them.
///
/// Both directions are single-producer single-consumer rings ordered by atomics: no lock, and
/// nothing that ThreadSanitizer cannot see (it does not see `Synchronization.Mutex` on Linux).
/// The thread takes a job only while the outcome ring has room, so neither ring can overflow:
/// a job finds the job ring full only if `capacity` jobs wait already.
///
/// Thread-safe in this sense: ``submit(_:)`` and ``takeOutcomes()`` are called by one thread (the
/// data plane's), ``processPending(with:entropy:)`` and the loop by one other.
public final class HandshakeWorker: Sendable {
    /// Handshake jobs the data plane's Tunnel keeps in flight at most.
    public let capacity: Int
    /// Room in each ring beyond ``capacity`` for the Tunnel's reconfiguration jobs, which its
    /// capacity does not bound (one per applied `set` request; the control plane applies one at
    /// a time).
    public static let reconfigurationRoom = 16
    private let ringCapacity: Int
    private let jobs: SPSCRing<HandshakeJob>
    private let outcomes: SPSCRing<HandshakeOutcome>
    private let stopFlag = Atomic<Bool>(false)
    private let processed = Atomic<UInt64>(0)
    /// Rings the handshake thread.
    private let doorbell: any Wakeup
    /// Rings the data plane (its control wakeup) when outcomes are ready.
    private let dataPlaneWakeup: any Wakeup

    /// A worker that waits on `doorbell` and rings `dataPlaneWakeup` (the data plane's
    /// ``DataPlaneControl`` wakeup) with outcomes.
    public init(doorbell: any Wakeup, dataPlaneWakeup: any Wakeup, capacity: Int = HandshakeExecution.defaultCapacity) {
        precondition(capacity > 0, "a HandshakeWorker needs room for one job")
        self.doorbell = doorbell
        self.dataPlaneWakeup = dataPlaneWakeup
        self.capacity = capacity
        ringCapacity = capacity + Self.reconfigurationRoom
        jobs = SPSCRing(capacity: ringCapacity)
        outcomes = SPSCRing(capacity: ringCapacity)
    }

    /// Queues `job` for the handshake thread; false when its ring is full.
    /// Called on the data-plane thread.
    public func submit(_ job: HandshakeJob) -> Bool {
        guard jobs.push(job) else { return false }
        doorbell.signal()
        return true
    }

    /// Jobs queued and not yet taken by the handshake thread.
    public var backlog: Int { jobs.count }

    /// The outcomes ready so far, oldest first. Called on the data-plane thread.
    public func takeOutcomes() -> [HandshakeOutcome] {
        var ready: [HandshakeOutcome] = []
        while let outcome = outcomes.pop() { ready.append(outcome) }
        if !ready.isEmpty { doorbell.signal() }  // room again: jobs held back can go on
        return ready
    }

    /// Jobs computed since start (for tests and status).
    public var processedCount: UInt64 { processed.load(ordering: .relaxed) }

    /// Computes every queued job now (as many as the outcome ring has room for), on the caller's
    /// thread; returns how many. The thread's
    /// loop is built on it; tests call it directly to interleave the two sides by hand.
    @discardableResult
    public func processPending(with processor: inout HandshakeProcessor, entropy: inout some EntropySource) -> Int {
        var count = 0
        // A job is taken only when its outcome has room; the rest wait for takeOutcomes().
        while outcomes.count < ringCapacity, let job = jobs.pop() {
            let pushed = outcomes.push(processor.process(job, entropy: &entropy))
            precondition(pushed, "HandshakeWorker: the outcome ring has one producer")
            processed.add(1, ordering: .relaxed)
            count += 1
            // At once, not after the batch: the first session need not wait for a flood's tail.
            dataPlaneWakeup.signal()
        }
        return count
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

/// A bounded single-producer single-consumer queue: the producer writes a slot, then publishes it
/// by a releasing store of `tail`; the consumer sees it by an acquiring load, takes it, and frees
/// the slot by a releasing store of `head`. The slots' memory is written once at creation: the
/// indices walk the whole ring even when it never fills, so its pages become resident anyway, and
/// touching them at start keeps the daemon's resident memory flat from then on (a soak measures it).
final class SPSCRing<Element>: @unchecked Sendable {
    // @unchecked: each slot is touched by one side at a time, handed over by the atomics above.
    private let slots: UnsafeMutablePointer<Element>
    private let capacity: Int
    private let head = Atomic<Int>(0)
    private let tail = Atomic<Int>(0)

    init(capacity: Int) {
        self.capacity = capacity
        let bytes = MemoryLayout<Element>.stride * capacity
        let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: MemoryLayout<Element>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)  // trivial bytes: the slots stay free
        slots = raw.bindMemory(to: Element.self, capacity: capacity)
    }

    deinit {
        var h = head.load(ordering: .acquiring)
        let t = tail.load(ordering: .acquiring)
        while h < t {
            (slots + h % capacity).deinitialize(count: 1)
            h += 1
        }
        slots.deallocate()
    }

    /// Producer: appends `element`; false when full.
    func push(_ element: Element) -> Bool {
        let t = tail.load(ordering: .relaxed)
        guard t - head.load(ordering: .acquiring) < capacity else { return false }
        (slots + t % capacity).initialize(to: element)
        tail.store(t + 1, ordering: .releasing)
        return true
    }

    /// Consumer: the oldest element, or nil when empty.
    func pop() -> Element? {
        let h = head.load(ordering: .relaxed)
        guard h < tail.load(ordering: .acquiring) else { return nil }
        let element = (slots + h % capacity).move()
        head.store(h + 1, ordering: .releasing)
        return element
    }

    /// Elements queued (either side may ask).
    var count: Int { max(0, tail.load(ordering: .acquiring) - head.load(ordering: .acquiring)) }
}
