// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The seals and opens of one batch of packets that the core left for its owner to run, so that
/// they can run on several threads at once: the core does everything else per packet, in order,
/// on the data-plane thread (routing, counters, timers, the replay window), and only the AEAD
/// itself, most of the cost of a packet, is handed out.
///
/// The owner's loop, per batch (``Tunnel/encapsulate(_:now:deferSeal:)`` and
/// ``Tunnel/beginDecapsulate(_:from:now:)``):
/// 1. the core appends jobs while it handles the batch's packets;
/// 2. the owner runs every job, split into disjoint ranges over its threads (``run(_:)``);
/// 3. only then are the sealed packets sent, and each opened one finished in order
///    (``Tunnel/finishDecapsulate(job:_:from:now:)``: the replay window, the peer's state, the
///    inner packet's checks);
/// 4. ``reset()`` before the next batch.
///
/// A job points into the packet's own buffer, which the owner keeps in place until step 3, and
/// holds its key (so a session that ends meanwhile cannot take the key away). Capacity is fixed;
/// when it is full the core does the crypto inline, so nothing is ever refused for lack of room.
///
/// Threads: the owner's thread appends, resets and finishes; ``run(_:)`` may be called from other
/// threads on disjoint ranges between step 1 and step 3, handed over by the owner's own
/// synchronisation (the jobs are written before it publishes them and read after it waited).
public final class CryptoBatch: @unchecked Sendable {
    // @unchecked Sendable: see "Threads" above; every job is written by one thread at a time.

    /// One AEAD operation in place.
    public struct Job {
        /// The plaintext (seal) or ciphertext (open); may be empty (a keepalive).
        var body: UnsafeMutableRawBufferPointer
        /// The 16 tag bytes behind the body.
        var tag: UnsafeMutableRawPointer
        var counter: UInt64
        var key: TransportKey
        /// Seal (true) or open.
        var seals: Bool
        /// After an open ran: whether the tag verified.
        var opened = false
        /// For an open: whose keypair, by peer number and our index.
        var peer: UInt32 = 0
        var localIndex: UInt32 = 0
    }

    /// The most jobs one batch holds: a round of 8 tun reads of 128 segments each.
    public let capacity: Int
    @usableFromInline let jobs: UnsafeMutablePointer<Job>
    /// Jobs appended since the last ``reset()``.
    public private(set) var count = 0

    /// An empty batch of `capacity` jobs (allocated here, once).
    public init(capacity: Int = Tuning.cryptoBatchCapacity) {
        precondition(capacity > 0, "a CryptoBatch needs room for one job")
        self.capacity = capacity
        jobs = .allocate(capacity: capacity)
    }

    deinit {
        jobs.deinitialize(count: count)
        jobs.deallocate()
    }

    /// Whether another job fits.
    public var hasRoom: Bool { count < capacity }

    func appendSeal(body: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, counter: UInt64, key: TransportKey) {
        precondition(count < capacity, "CryptoBatch is full: check hasRoom first")
        (jobs + count).initialize(to: Job(body: body, tag: tag, counter: counter, key: key, seals: true))
        count += 1
    }

    /// Appends an open and returns its job number.
    func appendOpen(
        body: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawPointer, counter: UInt64, key: TransportKey,
        peer: UInt32, localIndex: UInt32
    ) -> Int {
        precondition(count < capacity, "CryptoBatch is full: check hasRoom first")
        (jobs + count).initialize(
            to: Job(body: body, tag: tag, counter: counter, key: key, seals: false, peer: peer, localIndex: localIndex))
        count += 1
        return count - 1
    }

    /// Job `index` (the owner's thread, after the jobs ran).
    func job(_ index: Int) -> Job {
        precondition(index >= 0 && index < count, "CryptoBatch: no job \(index)")
        return jobs[index]
    }

    /// Runs the jobs in `range`: from any thread, on a range no other thread runs.
    public func run(_ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "CryptoBatch: range beyond the jobs")
        for i in range {
            let job = jobs + i
            if job.pointee.seals {
                job.pointee.key.seal(job.pointee.body, tag: job.pointee.tag, counter: job.pointee.counter)
            } else {
                job.pointee.opened = job.pointee.key.open(
                    job.pointee.body, tag: UnsafeRawPointer(job.pointee.tag), counter: job.pointee.counter)
            }
        }
    }

    /// Runs every job on the caller's thread.
    public func runAll() { run(0..<count) }

    /// Empties the batch (its keys are released).
    public func reset() {
        jobs.deinitialize(count: count)
        count = 0
    }
}
