// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore

/// The path-MTU search on its own: a fake path that echoes probes up to a size, a fake clock.
@Suite("PathMTUProber: the search for the largest inner size a path carries")
struct PathMTUProberTests {
    /// Runs the prober against a path carrying inner sizes up to `limit` (nil: nothing echoes),
    /// with a round trip of `rtt`, until nothing is due before `until`. Returns the rounds sent.
    @discardableResult
    func drive(_ prober: inout PathMTUProber, limit: Int?, rtt: Duration = .milliseconds(1), from start: Instant,
               until end: Instant) -> Int {
        var now = start
        var rounds = 0
        while now <= end {
            if prober.wantsRound {
                rounds += 1
                prober.roundSent(now: now)
                let ids = (0..<prober.probeCount).map { (prober.probeID(at: $0), prober.size(at: $0)) }
                now = now + rtt
                for (id, size) in ids where limit.map({ size <= $0 }) ?? false {
                    prober.echoReceived(id: id, size: size, now: now)
                }
                continue
            }
            guard let due = prober.deadline, due <= end else { break }
            now = max(now, due)
            prober.tick(now: now)
        }
        return rounds
    }

    @Test("a 1,220-byte path under a 1,420-byte MTU is found exactly, in a few rounds, within a second",
          arguments: [1220, 1420, 1419, 512, 513, 1000, 1280])
    func findsTheLimit(limit: Int) {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        let rounds = drive(&prober, limit: limit, from: .zero, until: .zero + .seconds(2))
        #expect(prober.mtu == limit)
        #expect(prober.peerEchoes == true)
        #expect(rounds <= 5, "rounds: \(rounds)")
        // Settled: the next search is the upward one, ten minutes on (none at the maximum).
        if limit < 1420 {
            #expect(prober.deadline.map { $0 > .zero + .seconds(599) && $0 < .zero + .seconds(602) } == true,
                    "next search at \(String(describing: prober.deadline))")
        } else {
            #expect(prober.deadline == nil)
        }
    }

    @Test("a peer that never echoes is marked after three silent rounds; its MTU stays; tried again after 10 minutes")
    func silentPeer() {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        let rounds = drive(&prober, limit: nil, from: .zero, until: .zero + .seconds(10))
        #expect(rounds == 3)
        #expect(prober.peerEchoes == false)
        #expect(prober.mtu == 1420)
        var changed = prober.assumeBlackHole(now: .zero + .seconds(20))
        #expect(changed)
        #expect(prober.mtu == PathMTUProber.conservativeMTU)
        changed = prober.assumeBlackHole(now: .zero + .seconds(21))
        #expect(!changed, "only once")
        // Ten minutes later it tries again, and an upgraded peer is searched as usual.
        drive(&prober, limit: 1300, from: .zero + .seconds(10), until: .zero + .seconds(700))
        #expect(prober.peerEchoes == true)
        #expect(prober.mtu == 1300)
    }

    @Test("assumeBlackHole does nothing for a peer that echoes")
    func blackHoleNeedsSilence() {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        drive(&prober, limit: 1420, from: .zero, until: .zero + .seconds(2))
        let changed = prober.assumeBlackHole(now: .zero + .seconds(3))
        #expect(!changed)
        #expect(prober.mtu == 1420)
    }

    @Test("ICMP lowers at once; the search upward 10 minutes later finds the path grown back")
    func icmpThenRaise() {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        drive(&prober, limit: 1420, from: .zero, until: .zero + .seconds(2))
        var changed = prober.pathTooSmall(innerMTU: 1220, now: .zero + .seconds(5))
        #expect(changed)
        #expect(prober.mtu == 1220)
        changed = prober.pathTooSmall(innerMTU: 1300, now: .zero + .seconds(6))
        #expect(!changed, "a larger report never raises")
        changed = prober.pathTooSmall(innerMTU: 100, now: .zero + .seconds(7))
        #expect(changed)
        #expect(prober.mtu == PathMTUProber.floor, "clamped to the floor")
        drive(&prober, limit: 1420, from: .zero + .seconds(7), until: .zero + .seconds(700))
        #expect(prober.mtu == 1420)
    }

    @Test("data unanswered: the current size is checked, and a shrunken path is found")
    func shrinkWithoutICMP() {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        drive(&prober, limit: 1420, from: .zero, until: .zero + .seconds(2))
        prober.dataUnanswered(now: .zero + .seconds(30))
        drive(&prober, limit: 1100, from: .zero + .seconds(30), until: .zero + .seconds(33))
        #expect(prober.mtu == 1100)
    }

    @Test("a lost probe costs at most a lower MTU until the next upward search, never a wrong larger one")
    func lossIsSafe() {
        var prober = PathMTUProber(maximum: 1420)
        prober.begin(now: .zero)
        #expect(prober.wantsRound)
        prober.roundSent(now: .zero)
        // Only the smallest probe's echo arrives; the round times out.
        prober.echoReceived(id: prober.probeID(at: 0), size: prober.size(at: 0), now: .zero + .milliseconds(1))
        // Echoes with a wrong id or size change nothing.
        prober.echoReceived(id: prober.probeID(at: 7) &+ 0x100, size: prober.size(at: 7), now: .zero + .milliseconds(1))
        prober.echoReceived(id: prober.probeID(at: 7), size: 9999, now: .zero + .milliseconds(1))
        let smallest = prober.size(at: 0)
        prober.tick(now: .zero + .milliseconds(200))
        #expect(prober.mtu == smallest)
        drive(&prober, limit: 1420, from: .zero + .milliseconds(200), until: .zero + .seconds(700))
        #expect(prober.mtu == 1420)
    }

    @Test("an MTU at or below the floor never probes")
    func tinyMTU() {
        var prober = PathMTUProber(maximum: 500)
        prober.begin(now: .zero)
        #expect(!prober.wantsRound && prober.deadline == nil && prober.mtu == 500)
    }
}
