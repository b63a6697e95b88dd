// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNLinux

@Suite struct PollerTests {
    @Test func wakeupFromAnotherThreadEndsTheWait() throws {
        let poller = try EpollPoller(capacity: 8)
        let wakeup = try EventFDWakeup()
        try poller.register(wakeup.pollHandle, token: 42, events: .readable)
        let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 8)
        defer { events.deallocate() }

        let signaller = Thread {
            usleep(50_000)
            wakeup.signal()
        }
        let start = ContinuousClock.now
        signaller.start()
        let n = try poller.wait(into: events, timeout: .seconds(10))
        let elapsed = seconds(since: start)
        #expect(n == 1)
        #expect(events[0].token == 42)
        #expect(events[0].events == .readable)
        #expect(elapsed >= 0.04 && elapsed < 5, "woke after \(elapsed) s")

        // Level-triggered: still ready until drained.
        #expect(try poller.wait(into: events, timeout: .zero) == 1)
        wakeup.drain()
        #expect(try poller.wait(into: events, timeout: .zero) == 0)
    }

    @Test func timeoutIsHonoured() throws {
        let poller = try EpollPoller()
        let wakeup = try EventFDWakeup()
        try poller.register(wakeup.pollHandle, token: 1, events: .readable)
        let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 4)
        defer { events.deallocate() }
        let start = ContinuousClock.now
        #expect(try poller.wait(into: events, timeout: .milliseconds(30)) == 0)
        let elapsed = seconds(since: start)
        #expect(elapsed >= 0.029 && elapsed < 1.0, "waited \(elapsed) s")
        // A sub-millisecond timeout is rounded up, never down to a busy poll.
        #expect(try poller.wait(into: events, timeout: .microseconds(10)) == 0)
    }

    @Test func modifyAndUnregister() throws {
        let poller = try EpollPoller()
        let wakeup = try EventFDWakeup()
        let events = UnsafeMutableBufferPointer<PollEvent>.allocate(capacity: 4)
        defer { events.deallocate() }
        try poller.register(wakeup.pollHandle, token: 1, events: .writable)
        #expect(try poller.wait(into: events, timeout: .zero) == 1)
        #expect(events[0].events == .writable)
        try poller.modify(wakeup.pollHandle, token: 2, events: .readable)
        #expect(try poller.wait(into: events, timeout: .zero) == 0)
        wakeup.signal()
        #expect(try poller.wait(into: events, timeout: .zero) == 1)
        #expect(events[0].token == 2)
        poller.unregister(wakeup.pollHandle)
        #expect(try poller.wait(into: events, timeout: .zero) == 0)
        #expect(throws: IOError.self) { try poller.modify(wakeup.pollHandle, token: 3, events: .readable) }
    }

    @Test func bootClockIsMonotonicAndWallClockIsNow() throws {
        let clock = BootClock()
        let a = clock.now()
        usleep(2000)
        let b = clock.now()
        #expect(b - a >= .milliseconds(2))
        let wall = wallClockNow()
        let foundation = Date().timeIntervalSince1970
        #expect(abs(Double(wall.seconds) - foundation) < 5)
        #expect(wall.nanoseconds >= 0 && wall.nanoseconds < 1_000_000_000)
    }
}
