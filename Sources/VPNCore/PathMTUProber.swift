// SPDX-License-Identifier: MIT
import VPNBasics

/// The path-MTU search towards one peer over UDP: which inner packet size reaches it whole
/// (docs/protocol.md, "Path probes"; RFC 8899's packetization-layer idea, simplified).
///
/// A round sends ``probesPerRound`` probes at once, of sizes spread over the range still unknown;
/// the largest echoed size is known to pass, the smallest unechoed one above it to fail. Rounds
/// follow each other until the two meet, so a 1,280-byte path is found in three rounds of about a
/// round trip each (a round with no echo at all waits ``noEchoTimeout``). The search starts when
/// the first session can send, again when data goes unanswered (the path may have shrunk) or the
/// peer roams, and searches upward ``raiseInterval`` after settling below the configured MTU.
/// ICMP "fragmentation needed" / "packet too big" and local `EMSGSIZE` reports lower the size at
/// once (``pathTooSmall(innerMTU:now:)``).
///
/// A peer that never echoes (a WireGuard implementation drops type 5 unread) is marked after
/// ``roundsBeforeNoEcho`` silent rounds; for it the owner falls back to
/// ``assumeBlackHole(now:)`` when large packets go unanswered.
///
/// Pure: instants in, sizes and deadlines out; the sizes live in a fixed tuple, nothing allocates.
/// Not thread-safe; owned by the peer's data-plane thread.
public struct PathMTUProber: Sendable {
    /// The smallest inner MTU searched: a 576-byte IPv4 path less vpnd's 60 bytes, rounded down.
    public static let floor = 512
    /// The inner MTU assumed, without echoes, once large packets go unanswered while the peer
    /// still answers handshakes: a 1,280-byte path (IPv6's minimum) less 80 bytes of overhead.
    public static let conservativeMTU = 1200
    /// Probes sent at once in a round.
    public static let probesPerRound = 8
    /// A round with no echo at all ends after this long (four round trips, at least 200 ms, once
    /// a round trip was measured).
    public static let noEchoTimeout: Duration = .seconds(1)
    /// Once an echo arrived, the rest of its round has this long, or twice the echo's round trip.
    public static let afterFirstEcho: Duration = .milliseconds(100)
    /// Silent rounds (not one echo) after which the peer is taken to be one that never echoes.
    public static let roundsBeforeNoEcho = 3
    /// How long after settling below the configured MTU a search upward starts; also how long a
    /// peer that never echoed waits before it is tried again.
    public static let raiseInterval: Duration = .seconds(600)

    /// The configured MTU: the largest size ever used.
    public private(set) var maximum: Int
    /// The inner packet size usable towards the peer now (at most ``maximum``).
    public private(set) var mtu: Int
    /// Whether the peer echoes probes: nil until known.
    public private(set) var peerEchoes: Bool?
    /// Set when a round is due: the owner sends ``size(at:)`` for each index below
    /// ``probeCount`` with ids ``probeID(at:)``, then calls ``roundSent(now:)``.
    public private(set) var wantsRound = false
    /// When the current round ends, or when the next search starts; nil when nothing is due.
    public private(set) var deadline: Instant?

    /// Known to pass (or the floor) and known to fail (or maximum + 1).
    private var low: Int
    private var high: Int
    private var sizes: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    public private(set) var probeCount = 0
    private var echoed: UInt8 = 0
    private var round: UInt32 = 0
    private var roundSentAt: Instant = .zero
    private var silentRounds = 0
    private var searching = false
    /// The round trip of the latest echo, once one came: rounds then end sooner.
    private var roundTrip: Duration?
    /// Whether `low` was seen to pass (else the round probes it too).
    private var lowVerified = false

    /// A prober for a tunnel whose configured MTU is `maximum`: nothing is due until ``begin(now:)``.
    public init(maximum: Int) {
        self.maximum = maximum
        mtu = maximum
        low = min(Self.floor, maximum)
        high = maximum + 1
    }

    /// The configured MTU changed (a reload): any round in flight is forgotten. Lowered, the size
    /// in use follows at once; raised, it stays until a search (``begin(now:)``, which the owner
    /// calls when `probing`) finds the larger size passes, or, without probing, follows at once.
    public mutating func setMaximum(_ newMaximum: Int, probing: Bool) {
        maximum = newMaximum
        mtu = probing ? min(mtu, newMaximum) : newMaximum
        low = min(Self.floor, newMaximum)
        high = newMaximum + 1
        lowVerified = false
        searching = false
        wantsRound = false
        probeCount = 0
        deadline = nil
    }

    /// The id of probe `index` of the current round.
    public func probeID(at index: Int) -> UInt32 { round << 8 | UInt32(index) }

    /// The inner size probe `index` of the current round tests.
    public func size(at index: Int) -> Int {
        precondition(index >= 0 && index < probeCount, "PathMTUProber.size(at:) outside the round")
        return withUnsafeBytes(of: sizes) { $0.load(fromByteOffset: index * MemoryLayout<Int>.stride, as: Int.self) }
    }

    /// Starts a search over the whole range now (the first session, or the peer roamed).
    public mutating func begin(now: Instant) {
        guard maximum > Self.floor else { return }
        low = Self.floor
        lowVerified = false
        high = maximum + 1
        startRound()
    }

    /// Data went out and nothing came back for a while: check that the current size still passes
    /// (a search over the range up to it). Nothing for a peer that does not echo.
    public mutating func dataUnanswered(now: Instant) {
        guard peerEchoes == true, !searching, maximum > Self.floor else { return }
        low = Self.floor
        lowVerified = false
        high = mtu + 1
        startRound()
    }

    /// An ICMP error or a local `EMSGSIZE` said the path carries at most `innerMTU` inner bytes.
    /// Returns true when that lowered ``mtu``.
    @discardableResult
    public mutating func pathTooSmall(innerMTU: Int, now: Instant) -> Bool {
        let reported = max(Self.floor, min(innerMTU, maximum))
        guard reported < mtu else { return false }
        mtu = reported
        if searching {
            high = min(high, reported + 1)
            low = min(low, reported)
        } else if mtu < maximum {
            deadline = now + Self.raiseInterval
        }
        return true
    }

    /// For a peer that never echoes: large packets went unanswered while it still answers, so
    /// assume a path that drops them and use ``conservativeMTU``. Returns true when that lowered
    /// ``mtu``.
    @discardableResult
    public mutating func assumeBlackHole(now: Instant) -> Bool {
        guard peerEchoes == false, mtu > Self.conservativeMTU else { return false }
        mtu = Self.conservativeMTU
        return true
    }

    /// The probes of the round went out at `now`.
    public mutating func roundSent(now: Instant) {
        wantsRound = false
        roundSentAt = now
        // With a known round trip a round needs no full second to say that nothing came back.
        let wait = roundTrip.map { min(Self.noEchoTimeout, max(Self.afterFirstEcho + Self.afterFirstEcho, $0 * 4)) }
        deadline = now + (wait ?? Self.noEchoTimeout)
    }

    /// An authenticated echo arrived.
    public mutating func echoReceived(id: UInt32, size: Int, now: Instant) {
        guard searching, !wantsRound, id >> 8 == round, Int(id & 0xFF) < probeCount,
            self.size(at: Int(id & 0xFF)) == size
        else { return }
        peerEchoes = true
        silentRounds = 0
        let first = echoed == 0
        echoed |= 1 << UInt8(id & 0xFF)
        roundTrip = now - roundSentAt
        if echoed == UInt8(truncatingIfNeeded: (1 << probeCount) - 1) {
            finishRound(now: now)
        } else if first {
            let rtt = now - roundSentAt
            let rest = max(Self.afterFirstEcho, rtt + rtt)
            if let current = deadline, now + rest < current { deadline = now + rest }
        }
    }

    /// Runs what is due at `now`: the end of a round, or a search that was waiting.
    public mutating func tick(now: Instant) {
        guard let due = deadline, due <= now else { return }
        deadline = nil
        if searching {
            finishRound(now: now)
        } else if peerEchoes == false {
            peerEchoes = nil  // try again: the peer may have been upgraded, or was only slow
            silentRounds = 0
            begin(now: now)
        } else if mtu < maximum {
            low = mtu
            lowVerified = true
            high = maximum + 1
            startRound()
        }
    }

    // MARK: - Rounds

    private mutating func startRound() {
        searching = true
        round &+= 1
        echoed = 0
        // Spread the probes over (low, high), and probe low too while it is unverified: the top
        // one is the largest size not known to fail.
        let top = high - 1
        var count = 0
        var previous = low
        withUnsafeMutableBytes(of: &sizes) { out in
            func add(_ size: Int) {
                out.storeBytes(of: size, toByteOffset: count * MemoryLayout<Int>.stride, as: Int.self)
                count += 1
            }
            if !lowVerified && low <= top { add(low) }
            let slots = Self.probesPerRound - count
            let span = top - low
            for i in 1...slots {
                let candidate = low + (span * i + slots - 1) / slots
                guard candidate > previous, candidate <= top else { continue }
                add(candidate)
                previous = candidate
            }
        }
        probeCount = count
        if count == 0 {
            searching = false
            return
        }
        wantsRound = true
        deadline = nil
    }

    private mutating func finishRound(now: Instant) {
        deadline = nil
        if echoed == 0 && !(lowVerified && peerEchoes == true) {
            // Not one echo, and nothing known to pass: lost, or a peer that does not echo.
            silentRounds += 1
            if peerEchoes != true && silentRounds >= Self.roundsBeforeNoEcho {
                peerEchoes = false
                searching = false
                deadline = now + Self.raiseInterval
                return
            }
            if silentRounds >= Self.roundsBeforeNoEcho {
                // An echoing peer went silent (its path is broken, not small): stop for now; data
                // going unanswered or the next session starts another search.
                searching = false
                silentRounds = 0
                return
            }
            startRound()
            return
        }
        var largestPassed = low
        var smallestFailed = high
        for i in 0..<probeCount {
            let size = self.size(at: i)
            if echoed & (1 << UInt8(i)) != 0 {
                largestPassed = max(largestPassed, size)
            }
        }
        for i in 0..<probeCount where echoed & (1 << UInt8(i)) == 0 {
            let size = self.size(at: i)
            if size > largestPassed { smallestFailed = min(smallestFailed, size) }
        }
        low = largestPassed
        lowVerified = true
        high = smallestFailed
        mtu = low
        if high - low <= 1 || low >= maximum {
            searching = false
            deadline = mtu < maximum ? now + Self.raiseInterval : nil
            return
        }
        startRound()
    }
}
