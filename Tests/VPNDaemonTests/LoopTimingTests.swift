// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
import VPNCore
@testable import VPNDaemon
import VPNTesting

/// The data plane's loop time: a histogram kept per iteration, without allocating, carried in
/// the status snapshot; its maximum kept by the control handle until a scrape takes it.
@Suite("LoopTiming")
struct LoopTimingTests {
    /// A clock that moves `step` forward at every read (the loop reads it twice per iteration).
    final class SteppingClock: Clock {
        var current = Instant(nanoseconds: 1_000_000_000)
        let step: Duration
        init(step: Duration) { self.step = step }
        func now() -> Instant {
            current = current + step
            return current
        }
    }

    @Test("bucket edges are inclusive; cumulative counts end at the total; the longest is kept")
    func buckets() {
        var timing = LoopTiming()
        #expect(timing.count == 0 && timing.cumulativeCount(LoopTiming.bucketBounds.count) == 0)
        for (i, bound) in LoopTiming.bucketBounds.enumerated() {
            var one = LoopTiming()
            one.record(nanoseconds: bound)
            #expect(one.cumulativeCount(i) == 1 && (i == 0 || one.cumulativeCount(i - 1) == 0), "the bound is in bucket \(i)")
            var next = LoopTiming()
            next.record(nanoseconds: bound + 1)
            #expect(next.cumulativeCount(i) == 0 && next.cumulativeCount(i + 1) == 1, "one more is in the next bucket")
            timing.record(nanoseconds: bound)
            timing.record(nanoseconds: bound + 1)
            #expect(timing.cumulativeCount(i) == UInt64(2 * i + 1))
        }
        #expect(timing.cumulativeCount(LoopTiming.bucketBounds.count) == timing.count)
        #expect(timing.count == UInt64(2 * LoopTiming.bucketBounds.count))
        #expect(timing.longestNanoseconds == LoopTiming.bucketBounds.last! + 1)
        #expect(timing.totalNanoseconds == 2 * LoopTiming.bucketBounds.reduce(0, +) + UInt64(LoopTiming.bucketBounds.count))
        // An end before its start (a clock that went back) counts as 0, not as a wrap-around.
        var backwards = LoopTiming()
        backwards.record(from: Instant(nanoseconds: 10), to: Instant(nanoseconds: 5))
        #expect(backwards.totalNanoseconds == 0 && backwards.cumulativeCount(0) == 1)
    }

    @Test("recording allocates nothing (it runs once per data-plane iteration)")
    func noAllocation() {
        var timing = LoopTiming()
        timing.record(nanoseconds: 1)
        vpnd_allocations_begin()
        for i in 0..<10_000 { timing.record(nanoseconds: UInt64(i) &* 7_919) }
        let allocations = vpnd_allocations_end()
        #expect(timing.count == 10_001)
        if vpnd_allocations_countable() == 1 { #expect(allocations == 0) }
    }

    @Test("the loop times its iterations from the clock reads it makes anyway; snapshots carry it; a scrape takes the maximum once")
    func dataPlaneCarriesIt() throws {
        let ids = TestIdentities()
        let clock = SteppingClock(step: .microseconds(7))
        let network = FakeDatagramNetwork(seed: 1)
        let socket = try FakeDatagramSocket(network: network, endpoint: serverEndpoint)
        let node = try Node(
            name: "s", configuration: ids.serverConfiguration(), entropySeed: 3, device: FakePacketDevice(name: "s0"),
            transport: UDPTransport(socket: socket, maxDatagram: maxMessage), poller: FakePoller(clock: ManualClock()),
            clock: clock, wakeup: FakeWakeup())
        for _ in 0..<10 { try node.dataPlane.runOnce(timeoutCap: .zero) }
        let status = try #require(try node.snapshot())
        // 11 iterations; each of the last 10 began with the read that ended the one before: 10
        // recorded, each one clock step (two reads per iteration: after the wait, before the next).
        #expect(status.loop.count == 10)
        #expect(status.loop.totalNanoseconds == 70_000)
        #expect(status.loop.longestNanoseconds == 7_000)
        #expect(status.loop.cumulativeCount(0) == 10)
        #expect(status.handshakeBacklog == 0)
        #expect(node.control.takeLongestLoop() == 7_000)
        #expect(node.control.takeLongestLoop() == 0)
        // The next snapshot's longest starts over (the iterations since the previous one).
        let next = try #require(try node.snapshot())
        #expect(next.loop.count == 11 && next.loop.longestNanoseconds == 7_000)
        _ = try node.snapshot()
        #expect(node.control.takeLongestLoop() == 7_000)  // the maximum over both snapshots
    }
}
