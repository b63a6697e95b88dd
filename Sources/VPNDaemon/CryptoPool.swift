// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The packet threads beside the data-plane thread: they seal and open a batch's packets
/// (``CryptoBatch``) in parallel with it, so one tunnel's traffic uses more than one core. The
/// data-plane thread keeps everything else (routing, counters, the replay window, timers, I/O),
/// so per-peer order and every protocol rule stay as they are with one thread: the batch's
/// packets are sent, and its opened packets finished, in their order once all its jobs ran.
///
/// Per batch (``run(_:)``, on the data-plane thread): publish the batch, ring each idle worker's
/// doorbell (one eventfd write each: per batch, never per packet), take chunks of jobs itself
/// like any worker, then wait until every job is done: briefly spinning, then asleep on its own
/// doorbell, which the worker that finishes the last job rings. A worker that wakes late finds
/// nothing left and sleeps again, so a loaded machine costs a wasted wake-up, not a wait.
/// Small batches run inline.
///
/// Jobs are claimed by compare-and-swap on one word that holds the batch's generation, its job
/// count and the next unclaimed job, so a worker can never claim a job of a batch it did not see
/// published. No lock anywhere; ThreadSanitizer sees every hand-over (atomics only).
public final class CryptoPool: @unchecked Sendable {
    // @unchecked Sendable: `batch` is the data plane's; workers touch only the job ranges they
    // claimed, between its publication (releasing store of `state`) and `done` reaching the
    // count (acquiring loads), as CryptoBatch documents.

    /// Batches with fewer jobs than this run on the data-plane thread alone.
    public static let minimumParallelJobs = 8

    private let batch: CryptoBatch
    /// Generation (32 bits) | job count (16 bits) | next unclaimed job (16 bits).
    private let state = Atomic<UInt64>(0)
    /// Jobs finished in the current generation.
    private let done = Atomic<Int>(0)
    /// The data-plane thread sleeps on `finished` (set before it sleeps, cleared after).
    private let waiting = Atomic<Bool>(false)
    private let stopFlag = Atomic<Bool>(false)
    private let doorbells: [any Wakeup]
    private let pollers: [any Poller]
    private let finished: any Wakeup
    private let finishedPoller: any Poller
    private let events: UnsafeMutableBufferPointer<PollEvent>
    private var generation: UInt64 = 0
    private var threads: [any StartedThread] = []

    /// Helper threads besides the data-plane thread (packet threads − 1).
    public var workerCount: Int { doorbells.count }

    /// A pool for `batch` (the data plane's tunnel's) with one worker per doorbell and poller
    /// (each worker waits on its own), and `finished` (with its poller) for the data-plane
    /// thread's wait.
    public init(
        batch: CryptoBatch, workers: [(doorbell: any Wakeup, poller: any Poller)],
        finished: (wakeup: any Wakeup, poller: any Poller)
    ) throws(IOError) {
        precondition(batch.capacity < 1 << 16, "CryptoPool packs job numbers in 16 bits")
        self.batch = batch
        doorbells = workers.map(\.doorbell)
        pollers = workers.map(\.poller)
        self.finished = finished.wakeup
        finishedPoller = finished.poller
        events = .allocate(capacity: 4)
        events.initialize(repeating: PollEvent(token: 0, events: []))
        for (doorbell, poller) in workers { try poller.register(doorbell.pollHandle, token: 1, events: .readable) }
        try finishedPoller.register(self.finished.pollHandle, token: 1, events: .readable)
    }

    deinit { events.deallocate() }

    /// Starts the workers (`vpnd-packet-N`). False when one could not start (those that did are
    /// stopped again).
    public func start(threads starter: any ThreadStarter) -> Bool {
        for index in 0..<doorbells.count {
            let doorbell = doorbells[index]
            let poller = PollerHandoff(pollers[index])
            guard let thread = starter.start(name: "vpnd-packet-\(index + 1)", stackSize: 1 << 18, { [self] in
                self.workerLoop(doorbell: doorbell, poller: poller.value)
            }) else {
                stop()
                return false
            }
            threads.append(thread)
        }
        return true
    }

    /// Stops and joins the workers.
    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        for doorbell in doorbells { doorbell.signal() }
        for thread in threads { thread.join() }
        threads.removeAll()
    }

    /// Runs every job of the batch, on the workers and this thread; returns when all are done.
    /// The data-plane thread's; the batch is not reset.
    public func run(_ batch: CryptoBatch) {
        precondition(batch === self.batch, "CryptoPool runs the batch it was made for")
        let count = batch.count
        guard count > 0 else { return }
        guard count >= Self.minimumParallelJobs, !threads.isEmpty else {
            batch.runAll()
            return
        }
        generation &+= 1
        done.store(0, ordering: .relaxed)
        // Releasing: the jobs, written before, are visible to whoever claims them.
        state.store(Self.pack(generation: generation, count: count, next: 0), ordering: .releasing)
        for doorbell in doorbells { doorbell.signal() }
        _ = claimAndRun()
        waitUntilDone(count)
    }

    // MARK: - Claiming

    static func pack(generation: UInt64, count: Int, next: Int) -> UInt64 {
        (generation & 0xFFFF_FFFF) << 32 | UInt64(count) << 16 | UInt64(next)
    }

    /// Claims chunks of the published batch and runs them until none is left; returns how many
    /// jobs this thread ran.
    private func claimAndRun() -> Int {
        var ran = 0
        while true {
            let seen = state.load(ordering: .acquiring)
            let count = Int((seen >> 16) & 0xFFFF)
            let next = Int(seen & 0xFFFF)
            guard next < count else { return ran }
            // Small chunks: the threads finish together, and no chunk waits behind a slow thread.
            let chunk = max(1, count / ((doorbells.count + 1) * 4))
            let end = min(count, next + chunk)
            let claimed = seen & ~0xFFFF | UInt64(end)
            guard state.compareExchange(expected: seen, desired: claimed, ordering: .acquiringAndReleasing).exchanged
            else { continue }
            batch.run(next..<end)
            ran += end - next
            let total = done.add(end - next, ordering: .sequentiallyConsistent).newValue
            if total == count && waiting.load(ordering: .sequentiallyConsistent) { finished.signal() }
        }
    }

    private func waitUntilDone(_ count: Int) {
        // The other threads hold one chunk at most: a short spin usually sees them finish.
        for _ in 0..<4096 where done.load(ordering: .acquiring) == count { return }
        waiting.store(true, ordering: .sequentiallyConsistent)
        while done.load(ordering: .sequentiallyConsistent) != count {
            // The worker that finishes the last job rings `finished` when it sees `waiting`; the
            // timeout only bounds a wake-up lost to an error.
            _ = try? finishedPoller.wait(into: events, timeout: .milliseconds(1))
            finished.drain()
        }
        waiting.store(false, ordering: .relaxed)
        finished.drain()
        // Acquiring: the workers' writes to the jobs (an open's verdict) are visible from here.
        _ = done.load(ordering: .acquiring)
    }

    // MARK: - Workers

    private func workerLoop(doorbell: any Wakeup, poller: any Poller) {
        let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 4)
        defer { events.deallocate() }
        events.initialize(repeating: PollEvent(token: 0, events: []))
        while !stopFlag.load(ordering: .acquiring) {
            // Drain, then look: a batch published after the look rings again.
            doorbell.drain()
            if stopFlag.load(ordering: .acquiring) { break }
            if claimAndRun() == 0 {
                _ = try? poller.wait(into: events, timeout: nil)
            }
        }
    }
}

/// Hands a worker's poller to its thread.
private final class PollerHandoff: @unchecked Sendable {
    // @unchecked: made on the starting thread, used by the worker thread alone afterwards.
    let value: any Poller
    init(_ value: any Poller) { self.value = value }
}

/// How many packet threads `Threads = auto` runs.
public enum PacketThreads {
    /// The most `auto` picks: beyond this the single data-plane thread that routes and sends for
    /// all of them is the limit, not the crypto.
    public static let automaticMaximum = 8

    /// `Threads = auto` on a machine where vpnd may use `cpus` CPUs.
    public static func automatic(cpus: Int) -> Int {
        // The other end, the applications and the kernel's own packet work share the cores:
        // half of them, and one on a machine of one or two.
        min(automaticMaximum, max(1, cpus / 2))
    }
}
