// SPDX-License-Identifier: MIT
import VPNBasics

/// A token bucket per source address for handshake initiations: 20 per second, bursts of 5
/// (wireguard-go's `ratelimiter` package and the Linux driver's `ratelimiter.c`).
///
/// IPv4 sources are keyed by address, IPv6 sources by their /64 (as the Linux driver does, so
/// one host cannot escape by cycling addresses in its subnet). Memory is bounded: at most
/// ``capacity`` sources are tracked, and a new one is refused while that many have been seen in
/// the last ``idleTime``.
///
/// Expiry costs O(1) per call, never a pass over the table: the entries form a list ordered by
/// their last use (a source's entry moves to the newest end on every call), so the idle ones are
/// always at the oldest end. Each call first drops at most ``expiriesPerCall`` entries idle for
/// ``idleTime`` from that end (by then their bucket is full again, so forgetting them changes no
/// decision); since a call adds at most one entry, expiry keeps ahead of any flood, and a new
/// source that finds the table full always gets the slot of an idle entry if there is one.
/// Storage (the slots and the index) is reserved once, for ``capacity`` entries; a call never
/// allocates. Pure: the caller passes `now`. A value type, not thread-safe.
public struct HandshakeRateLimiter: Sendable {
    /// Sustained initiations per second per source.
    public static let packetsPerSecond: UInt64 = 20
    /// Initiations a quiet source may send at once.
    public static let burst: UInt64 = 5
    /// Entries idle this long are dropped.
    public static let idleTime: Duration = .seconds(1)
    /// The most idle entries one call drops (more than the one entry a call can add).
    public static let expiriesPerCall = 2

    static let packetCost: UInt64 = 1_000_000_000 / packetsPerSecond
    static let maximumTokens: UInt64 = packetCost * burst

    private struct Key: Hashable {
        var high: UInt64
        var low: UInt64
    }

    /// One tracked source, linked into the list ordered by last use.
    private struct Slot {
        var key: Key
        var lastTime: Instant
        var tokens: UInt64
        /// The next older slot, or `none`; for a free slot, the next free one.
        var older: Int32
        /// The next newer slot, or `none`.
        var newer: Int32
    }

    private static let none: Int32 = -1

    /// The most sources tracked at once.
    public let capacity: Int
    private var index: [Key: Int32]
    private var slots: [Slot]
    private var newest = HandshakeRateLimiter.none
    private var oldest = HandshakeRateLimiter.none
    private var firstFree = HandshakeRateLimiter.none
    /// The latest `now` seen: time never runs backwards inside the limiter, so the list stays
    /// ordered by `lastTime`.
    private var latest = Instant.zero

    /// Entries the last call looked at (expiry candidates and the source's own): the work of a
    /// call, for tests that pin it to a small constant whatever the number of tracked sources.
    internal private(set) var entriesVisitedByLastCall = 0

    /// A limiter tracking at most `capacity` sources.
    public init(capacity: Int = 4096) {
        precondition(capacity > 0 && capacity < Int(Int32.max), "HandshakeRateLimiter needs a positive capacity")
        self.capacity = capacity
        index = Dictionary(minimumCapacity: capacity)
        slots = []
        slots.reserveCapacity(capacity)
    }

    /// Number of sources currently tracked.
    public var trackedSources: Int { index.count }

    /// True when an initiation from `source` at `now` is within its rate; spends a token if so.
    public mutating func allow(_ source: Endpoint, now: Instant) -> Bool {
        latest = max(latest, now)
        let now = latest
        entriesVisitedByLastCall = 0
        expire(now: now, limit: Self.expiriesPerCall)
        let key = Self.key(for: source)
        if let i = index[key] {
            entriesVisitedByLastCall += 1
            let allowed = slots.withUnsafeMutableBufferPointer { slots in
                let elapsed = now.nanoseconds - slots[Int(i)].lastTime.nanoseconds
                var tokens = min(Self.maximumTokens, slots[Int(i)].tokens &+ min(elapsed, Self.maximumTokens))
                let allowed = tokens >= Self.packetCost
                if allowed { tokens -= Self.packetCost }
                slots[Int(i)].tokens = tokens
                slots[Int(i)].lastTime = now
                return allowed
            }
            moveToNewest(i)
            return allowed
        }
        guard index.count < capacity else { return false }
        let slot = Slot(key: key, lastTime: now, tokens: Self.maximumTokens - Self.packetCost, older: newest, newer: Self.none)
        let i: Int32
        if firstFree != Self.none {
            i = firstFree
            firstFree = slots[Int(i)].older
            slots[Int(i)] = slot
        } else {
            i = Int32(slots.count)
            slots.append(slot)
        }
        link(i)
        index[key] = i
        return true
    }

    /// Forgets every source idle for ``idleTime`` (oldest first, stopping at the first one still
    /// in use: the work is the number forgotten, not the table's size). ``allow(_:now:)`` does
    /// this itself, a few entries per call; this is for callers that want the table exact now.
    public mutating func sweep(now: Instant) {
        latest = max(latest, now)
        expire(now: latest, limit: capacity)
    }

    /// Drops up to `limit` entries idle for ``idleTime``, from the oldest end.
    private mutating func expire(now: Instant, limit: Int) {
        var dropped = 0
        while dropped < limit, oldest != Self.none {
            let i = oldest
            entriesVisitedByLastCall += 1
            guard now - slots[Int(i)].lastTime >= Self.idleTime else { return }
            unlink(i)
            index.removeValue(forKey: slots[Int(i)].key)
            slots[Int(i)].older = firstFree
            firstFree = i
            dropped += 1
        }
    }

    /// Links slot `i` in at the newest end (its `older` must be `newest`).
    private mutating func link(_ i: Int32) {
        slots[Int(i)].older = newest
        slots[Int(i)].newer = Self.none
        if newest != Self.none { slots[Int(newest)].newer = i } else { oldest = i }
        newest = i
    }

    private mutating func unlink(_ i: Int32) {
        let older = slots[Int(i)].older
        let newer = slots[Int(i)].newer
        if older != Self.none { slots[Int(older)].newer = newer } else { oldest = newer }
        if newer != Self.none { slots[Int(newer)].older = older } else { newest = older }
    }

    private mutating func moveToNewest(_ i: Int32) {
        guard newest != i else { return }
        unlink(i)
        link(i)
    }

    private static func key(for source: Endpoint) -> Key {
        let isIPv4 = source.address.0 == 0 && withUnsafeBytes(of: source.address.1) { b in
            b[0] == 0 && b[1] == 0 && b[2] == 0xFF && b[3] == 0xFF
        }
        // address.1 holds bytes 8...15; an IPv6 /64 keeps only bytes 0...7.
        return Key(high: source.address.0, low: isIPv4 ? source.address.1 : 0)
    }
}
