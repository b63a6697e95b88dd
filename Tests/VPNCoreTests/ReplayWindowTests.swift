// SPDX-License-Identifier: MIT
import Testing
import VPNCore
import VPNTesting

/// One row of the replay table: counters offered in order, each with whether it must be accepted.
struct ReplayCase: Sendable, CustomTestStringConvertible {
    let number: Int
    let name: String
    let steps: [Step]

    struct Step: Sendable {
        let counter: UInt64
        let accepted: Bool
    }

    init(_ number: Int, _ name: String, _ steps: [(UInt64, Bool)]) {
        self.number = number
        self.name = name
        self.steps = steps.map { Step(counter: $0.0, accepted: $0.1) }
    }

    var testDescription: String { "\(number). \(name)" }
}

private let w = UInt64(Spec.replayWindowSize)  // 8128
private let limit = Spec.rejectAfterMessages

private let replayCases: [ReplayCase] = [
    ReplayCase(1, "first packet 0", [(0, true), (0, false)]),
    ReplayCase(2, "first packet not 0, then older ones", [(5, true), (0, true), (4, true), (5, false), (0, false)]),
    ReplayCase(3, "in order", (0..<300).map { ($0, true) }),
    ReplayCase(4, "reordered inside the window", [(10, true), (8, true), (9, true), (7, true), (11, true), (8, false)]),
    ReplayCase(5, "duplicate", [(3, true), (3, false), (4, true), (3, false), (4, false)]),
    ReplayCase(6, "edge: highest - 8128 accepted, highest - 8129 refused",
               [(10_000, true), (10_000 - w, true), (10_000 - w - 1, false), (10_000 - w, false)]),
    ReplayCase(7, "edge from the start: 0 is in the window of 8128, not of 8129",
               [(w, true), (0, true), (w + 1, true), (1, true), (w + 2, true), (1, false), (2, true)]),
    ReplayCase(8, "edge on the other side: 0 unseen but 8129 behind", [(w + 1, true), (0, false), (1, true)]),
    ReplayCase(9, "too old", [(20_000, true), (100, false), (20_000 - w - 1, false), (19_999, true)]),
    ReplayCase(10, "far jump ahead, then the old ones refused",
               [(5, true), (1_000_000, true), (5, false), (6, false), (999_999, true), (1_000_000, false),
                (1_000_000 - w, true)]),
    ReplayCase(11, "slot reuse across one ring: a whole block cleared on the slide",
               (0..<64).map { ($0, true) } + [(8192, true), (8191, true), (64, true), (63, false), (0, false),
                                              (8192 - w, false), (8192 + 1, true)]),
    ReplayCase(12, "jump of exactly one block keeps the older bits",
               [(0, true), (63, true), (64, true), (0, false), (63, false), (1, true)]),
    ReplayCase(13, "counter limit refused, one below accepted",
               [(limit, false), (limit + 1, false), (.max, false), (limit - 1, true), (limit - 1, false),
                (limit - 1 - w, true), (limit, false)]),
    ReplayCase(14, "a refused limit counter does not move the window", [(10, true), (limit, false), (10, false), (9, true)]),
    ReplayCase(15, "jump by less than a ring keeps the window's memory",
               [(0, true), (5000, true), (0, false), (1, true), (4999, true), (5000, false)]),
]

@Suite("Replay window (RFC 6479)")
struct ReplayWindowTests {
    @Test("replay table", arguments: replayCases)
    func table(_ row: ReplayCase) {
        var window = ReplayWindow()
        for (i, step) in row.steps.enumerated() {
            #expect(window.wouldAccept(step.counter) == step.accepted, "step \(i): wouldAccept(\(step.counter))")
            #expect(window.accept(step.counter) == step.accepted, "step \(i): accept(\(step.counter))")
        }
    }

    @Test("wouldAccept changes nothing")
    func wouldAcceptIsPure() {
        var window = ReplayWindow()
        #expect(window.accept(100) == true)
        #expect(window.wouldAccept(1_000_000))
        #expect(window.highestCounter == 100)
        #expect(window.wouldAccept(99))
        #expect(window.accept(99) == true)
    }

    @Test("reset forgets everything")
    func reset() {
        var window = ReplayWindow()
        #expect(window.accept(0) && window.accept(50_000))
        window.reset()
        #expect(window.highestCounter == 0)
        #expect(window.accept(0) && window.accept(1))
    }

    @Test("a copy is independent (inline storage)")
    func copies() {
        var window = ReplayWindow()
        #expect(window.accept(7) == true)
        var copy = window
        #expect(copy.accept(8) == true)
        #expect(window.wouldAccept(8))
        #expect(!copy.wouldAccept(8))
        #expect(MemoryLayout<ReplayWindow>.size >= 128 * 8)
    }

    @Test("any permutation of counters within one window is accepted exactly once", arguments: [1, 2, 3, 4, 5] as [UInt64])
    func permutation(seed: UInt64) {
        var entropy = SeededEntropy(seed: seed)
        let base = entropy.nextUInt64() >> 20
        var counters = Array(base...(base + w))  // 8129 counters: the oldest is exactly at the edge of the newest
        for i in stride(from: counters.count - 1, to: 0, by: -1) {
            counters.swapAt(i, entropy.next(below: i + 1))
        }
        var window = ReplayWindow()
        for c in counters { #expect(window.accept(c) == true, "counter \(c)") }
        for c in counters { #expect(!window.wouldAccept(c) && !window.accept(c), "counter \(c) twice") }
        #expect(window.highestCounter == base + w)
    }

    @Test("random sequences agree with a reference model (a set and a maximum)", arguments: 0..<12)
    func againstModel(seed: UInt64) {
        var entropy = SeededEntropy(seed: 0xC0FFEE &+ seed)
        var window = ReplayWindow()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var current: UInt64 = seed % 3 == 0 ? limit - 20_000 : entropy.nextUInt64() >> 40
        var acceptedCount = 0
        for step in 0..<4000 {
            let r = entropy.next(below: 100)
            let counter: UInt64
            switch r {
            case 0: counter = current &+ UInt64(entropy.next(below: 100_000))  // far jump
            case 1: counter = limit &+ UInt64(entropy.next(below: 3))  // at or past the limit
            case 2..<50: counter = current &+ UInt64(entropy.next(below: 64))  // ahead
            default:
                let back = UInt64(entropy.next(below: Int(w) + 200))  // behind, around the edge
                counter = current >= back ? current - back : 0
            }
            current = max(current, min(counter, limit - 1))
            let expected = counter < limit && (counter > highest || (highest - counter <= w && !seen.contains(counter)))
            #expect(window.wouldAccept(counter) == expected, "step \(step), counter \(counter)")
            #expect(window.accept(counter) == expected, "step \(step), counter \(counter)")
            if expected {
                seen.insert(counter)
                highest = max(highest, counter)
                acceptedCount += 1
            }
            #expect(window.highestCounter == highest)
        }
        #expect(acceptedCount > 1000)
    }
}
