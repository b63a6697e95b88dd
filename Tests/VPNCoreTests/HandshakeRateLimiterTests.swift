// SPDX-License-Identifier: MIT
import CAllocationCounter
import Testing
import VPNBasics
@testable import VPNCore
import VPNTesting

@Suite("Handshake rate limiter")
struct HandshakeRateLimiterTests {
    let a = Endpoint(ipv4: 203, 0, 113, 1, port: 1000)

    @Test("a burst of 5, then 20 per second")
    func burstThenRate() {
        var limiter = HandshakeRateLimiter()
        let clock = ManualClock(start: Instant(nanoseconds: 5_000_000_000))
        for i in 0..<5 { let ok = limiter.allow(a, now: clock.now()); #expect(ok, "burst \(i)") }
        do { let ok = limiter.allow(a, now: clock.now()); #expect(!ok) }
        // Another port of the same address shares the bucket; another address has its own.
        var samePort = a
        samePort.port = 2000
        do { let ok = limiter.allow(samePort, now: clock.now()); #expect(!ok) }
        do { let ok = limiter.allow(Endpoint(ipv4: 203, 0, 113, 2, port: 1000), now: clock.now()); #expect(ok) }
        // One token every 50 ms.
        clock.advance(by: .milliseconds(49))
        do { let ok = limiter.allow(a, now: clock.now()); #expect(!ok) }
        clock.advance(by: .milliseconds(1))
        do { let ok = limiter.allow(a, now: clock.now()); #expect(ok) }
        do { let ok = limiter.allow(a, now: clock.now()); #expect(!ok) }
        // Sustained: one attempt every 10 ms for 10 s lets about 20 per second through.
        var allowed = 0
        for _ in 0..<1000 {
            clock.advance(by: .milliseconds(10))
            if limiter.allow(a, now: clock.now()) { allowed += 1 }
        }
        #expect(allowed == 200)
        // After a quiet second the full burst is back.
        clock.advance(by: .seconds(2))
        for _ in 0..<5 { let ok = limiter.allow(a, now: clock.now()); #expect(ok) }
        do { let ok = limiter.allow(a, now: clock.now()); #expect(!ok) }
    }

    @Test("IPv6 sources share a bucket per /64")
    func ipv6Prefix() {
        var limiter = HandshakeRateLimiter()
        func v6(_ last: UInt8) -> Endpoint {
            Endpoint(addressBytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, last], port: 1)
        }
        for i in 0..<5 { let ok = limiter.allow(v6(UInt8(i)), now: .zero); #expect(ok) }
        do { let ok = limiter.allow(v6(99), now: .zero); #expect(!ok) }
        var other = [UInt8](repeating: 0, count: 16)
        other[0] = 0x20
        other[7] = 2
        do { let ok = limiter.allow(Endpoint(addressBytes: other, port: 1), now: .zero); #expect(ok) }
    }

    @Test("memory is bounded: idle sources are swept, and a full table refuses new sources")
    func bounded() {
        var limiter = HandshakeRateLimiter(capacity: 3)
        for i in 0..<3 { let ok = limiter.allow(Endpoint(ipv4: 10, 0, 0, UInt8(i), port: 1), now: .zero); #expect(ok) }
        #expect(limiter.trackedSources == 3)
        do { let ok = limiter.allow(Endpoint(ipv4: 10, 0, 0, 9, port: 1), now: Instant(nanoseconds: 500_000_000)); #expect(!ok) }
        do { let ok = limiter.allow(Endpoint(ipv4: 10, 0, 0, 0, port: 1), now: Instant(nanoseconds: 500_000_000)); #expect(ok) }
        let later = Instant(nanoseconds: 1_200_000_000)
        do { let ok = limiter.allow(Endpoint(ipv4: 10, 0, 0, 9, port: 1), now: later); #expect(ok) }
        #expect(limiter.trackedSources == 2)
    }

    // The defect these pin: the table was swept by a full pass once a second and on every new
    // source while full (O(n) per packet under a spoofed-source flood), and an entry idle for a
    // second survived until the next whole-second sweep.

    @Test("an entry idle past the idle time is gone while other sources stay busy")
    func idleEntryExpiresUnderLoad() {
        var limiter = HandshakeRateLimiter()
        let busy = Endpoint(ipv4: 198, 51, 100, 7, port: 1)
        let start = Instant(nanoseconds: 5_000_000_000)
        _ = limiter.allow(busy, now: start)
        let used = start + .milliseconds(20)
        _ = limiter.allow(a, now: used)  // `a` is used once, at 5.02 s
        #expect(limiter.trackedSources == 2)
        // `busy` sends every 100 ms; `a` has been idle for 1 s at 6.02 s and is gone at the next call.
        for step in 1...30 {
            let now = start + .milliseconds(100 * step)
            _ = limiter.allow(busy, now: now)
            #expect(limiter.trackedSources == (now - used >= HandshakeRateLimiter.idleTime ? 1 : 2), "at \(now)")
        }
    }

    @Test("a flood of 100,000 distinct sources: never over capacity, constant work per call, and a legitimate source gets its tokens")
    func flood() {
        var limiter = HandshakeRateLimiter()
        let known = Endpoint(ipv4: 192, 0, 2, 10, port: 51820)
        var now = Instant(nanoseconds: 10_000_000_000)
        var mostVisited = 0
        var knownAllowed = 0
        var refusedWhileFull = 0
        // 10,000 new sources a second for 10 s; the known source sends every 50 ms throughout.
        for n in 0..<100_000 {
            now = now + .microseconds(100)
            let spoofed = Endpoint(ipv4: 10, UInt8(n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), port: 9)
            if !limiter.allow(spoofed, now: now) { refusedWhileFull += 1 }
            mostVisited = max(mostVisited, limiter.entriesVisitedByLastCall)
            #expect(limiter.trackedSources <= limiter.capacity)
            if n % 500 == 0 {
                if limiter.allow(known, now: now) { knownAllowed += 1 }
                mostVisited = max(mostVisited, limiter.entriesVisitedByLastCall)
            }
        }
        #expect(refusedWhileFull > 0)
        // A tracked source keeps its bucket: 20 a second.
        #expect(knownAllowed == 200)
        // Each call looks at no more than its expiry candidates and its own entry.
        #expect(mostVisited <= HandshakeRateLimiter.expiriesPerCall + 2)
        // The flood stops; a second later a source never seen before gets its full burst.
        now = now + .seconds(1)
        let newcomer = Endpoint(ipv4: 192, 0, 2, 20, port: 1)
        for i in 0..<5 { let ok = limiter.allow(newcomer, now: now); #expect(ok, "burst \(i)") }
        do { let ok = limiter.allow(newcomer, now: now); #expect(!ok) }
        limiter.sweep(now: now)
        #expect(limiter.trackedSources == 1)
    }

    @Test("a new source finding the table full of idle entries takes an idle one's slot, with O(1) work")
    func fullOfIdle() {
        var limiter = HandshakeRateLimiter(capacity: 4096)
        for n in 0..<4096 {
            _ = limiter.allow(Endpoint(ipv4: 10, 1, UInt8(n >> 8), UInt8(truncatingIfNeeded: n), port: 1), now: .zero)
        }
        #expect(limiter.trackedSources == 4096)
        let later = Instant.zero + .seconds(2)
        for n in 0..<100 {
            let ok = limiter.allow(Endpoint(ipv4: 10, 2, 0, UInt8(n), port: 1), now: later)
            #expect(ok)
            #expect(limiter.entriesVisitedByLastCall <= HandshakeRateLimiter.expiriesPerCall + 1)
            #expect(limiter.trackedSources <= 4096)
        }
    }

    @Test("allow makes no heap allocation while entries expire and are replaced")
    func noAllocation() {
        var limiter = HandshakeRateLimiter(capacity: 256)
        var now = Instant.zero
        // Endpoint(ipv4:) builds an array: make the sources before counting.
        let sources = (0..<1000).map { n in Endpoint(ipv4: 10, 3, UInt8(n >> 8), UInt8(n & 0xFF), port: 1) }
        // Each source comes back every 2 s, so entries keep expiring and being replaced, and the
        // table is full part of the time.
        func run(_ calls: Int) {
            for n in 0..<calls {
                now = now + .milliseconds(2)
                _ = limiter.allow(sources[n % 1000], now: now)
            }
        }
        run(5000)  // warm-up
        guard vpnd_allocations_countable() == 1 else { return }
        vpnd_allocations_begin()
        run(20_000)
        let allocations = vpnd_allocations_end()
        #expect(allocations == 0)
    }
}

