// SPDX-License-Identifier: MIT
import VPNBasics

/// Every peer's next deadline in one compact array, kept up to date by the peers themselves:
/// a peer whose timers, path prober, carrier selector or reconnect check change marks itself
/// dirty (a `didSet` on each of them, so no code path can forget it), and
/// ``Tunnel/nextDeadline`` recomputes only the dirty peers before it takes the minimum.
///
/// Before this, the next deadline walked every peer on every call, twice per data-plane
/// iteration: with 10,000 peers holding sessions (a handshake storm), that walk was over half of
/// the packet thread's time. Now a call costs the dirty peers (one, while one peer carries
/// traffic) and, only when the earliest deadline moved later, one scan of 8 bytes per peer.
/// Debug builds check the result against the full walk on every call.
///
/// Not thread-safe; owned by the tunnel's thread with the peers.
final class DeadlineBook {
    /// Nanoseconds of each peer's earliest deadline, by peer number; `.max`: none.
    var deadlines: [UInt64] = []
    /// Peers marked dirty since the last update, each once.
    var dirty: [UInt32] = []
    /// The minimum of `deadlines` when `minimumKnown`.
    private var minimum: UInt64 = .max
    private var minimumKnown = false

    /// Makes room for peer `number` (a new or reused number), dirty.
    func add(_ number: UInt32) {
        let index = Int(number)
        if index >= deadlines.count {
            deadlines.append(contentsOf: repeatElement(.max, count: index + 1 - deadlines.count))
            dirty.reserveCapacity(deadlines.count)
        }
        remove(number)
    }

    /// Forgets peer `number` (removed): it has no deadline.
    func remove(_ number: UInt32) {
        guard Int(number) < deadlines.count else { return }
        if deadlines[Int(number)] == minimum { minimumKnown = false }
        deadlines[Int(number)] = .max
    }

    /// Notes that peer `number`'s deadline may have changed. The peer keeps the flag that
    /// makes this once per update.
    @inline(__always)
    func markDirty(_ number: UInt32) { dirty.append(number) }

    /// Stores `deadline` as peer `number`'s.
    @inline(__always)
    func set(_ number: UInt32, _ deadline: Instant?) {
        let index = Int(number)
        let value = deadline?.nanoseconds ?? .max
        let old = deadlines[index]
        guard value != old else { return }
        deadlines[index] = value
        if value < minimum {
            minimum = value  // still the minimum if it was known; a lower bound otherwise
        } else if old == minimum {
            minimumKnown = false  // the earliest moved later (or went away)
        }
    }

    /// The earliest deadline of all peers.
    var earliest: Instant? {
        if !minimumKnown {
            var low = UInt64.max
            for value in deadlines where value < low { low = value }
            minimum = low
            minimumKnown = true
        }
        return minimum == .max ? nil : Instant(nanoseconds: minimum)
    }
}
