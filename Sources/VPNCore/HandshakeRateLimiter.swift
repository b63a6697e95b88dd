// SPDX-License-Identifier: MIT
import VPNBasics

/// A token bucket per source address for handshake initiations: 20 per second, bursts of 5
/// (wireguard-go's `ratelimiter` package and the Linux driver's `ratelimiter.c`).
///
/// IPv4 sources are keyed by address, IPv6 sources by their /64 (as the Linux driver does, so
/// one host cannot escape by cycling addresses in its subnet). Memory is bounded: entries idle
/// for a second are swept (by then their bucket is full again, so nothing is lost), and when
/// ``capacity`` sources are tracked a new one is refused. Pure: the caller passes `now`.
/// A value type, not thread-safe.
public struct HandshakeRateLimiter: Sendable {
    /// Sustained initiations per second per source.
    public static let packetsPerSecond: UInt64 = 20
    /// Initiations a quiet source may send at once.
    public static let burst: UInt64 = 5
    /// Entries idle this long are swept.
    public static let idleTime: Duration = .seconds(1)

    static let packetCost: UInt64 = 1_000_000_000 / packetsPerSecond
    static let maximumTokens: UInt64 = packetCost * burst

    private struct Key: Hashable {
        var high: UInt64
        var low: UInt64
    }

    private struct Entry {
        var lastTime: Instant
        var tokens: UInt64
    }

    /// The most sources tracked at once.
    public let capacity: Int
    private var table: [Key: Entry]
    private var lastSweep = Instant.zero

    /// A limiter tracking at most `capacity` sources.
    public init(capacity: Int = 4096) {
        precondition(capacity > 0, "HandshakeRateLimiter needs a positive capacity")
        self.capacity = capacity
        table = Dictionary(minimumCapacity: capacity)
    }

    /// Number of sources currently tracked.
    public var trackedSources: Int { table.count }

    /// True when an initiation from `source` at `now` is within its rate; spends a token if so.
    public mutating func allow(_ source: Endpoint, now: Instant) -> Bool {
        if now >= lastSweep + Self.idleTime { sweep(now: now) }
        let key = Self.key(for: source)
        if var entry = table[key] {
            let elapsed = now >= entry.lastTime ? now.nanoseconds - entry.lastTime.nanoseconds : 0
            entry.tokens = min(Self.maximumTokens, entry.tokens &+ min(elapsed, Self.maximumTokens))
            entry.lastTime = max(now, entry.lastTime)
            let allowed = entry.tokens >= Self.packetCost
            if allowed { entry.tokens -= Self.packetCost }
            table[key] = entry
            return allowed
        }
        if table.count >= capacity {
            sweep(now: now)
            if table.count >= capacity { return false }
        }
        table[key] = Entry(lastTime: now, tokens: Self.maximumTokens - Self.packetCost)
        return true
    }

    /// Forgets sources idle for ``idleTime``.
    public mutating func sweep(now: Instant) {
        lastSweep = now
        table = table.filter { now < $0.value.lastTime || now - $0.value.lastTime < Self.idleTime }
    }

    private static func key(for source: Endpoint) -> Key {
        let isIPv4 = source.address.0 == 0 && withUnsafeBytes(of: source.address.1) { b in
            b[0] == 0 && b[1] == 0 && b[2] == 0xFF && b[3] == 0xFF
        }
        // address.1 holds bytes 8...15; an IPv6 /64 keeps only bytes 0...7.
        return Key(high: source.address.0, low: isIPv4 ? source.address.1 : 0)
    }
}
