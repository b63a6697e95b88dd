// SPDX-License-Identifier: MIT
import VPNBasics

/// Which handshake messages get to cost an X25519 operation: mac1 always, and under load mac2 (a
/// cookie) and the per-source rate limit (whitepaper 5.3, wireguard-go's order).
///
/// Load is judged only from work that costs the sender something: initiations with a valid mac1
/// (the sender knows our public key) arriving faster than ``underLoadInitiationsPerSecond``, or
/// the handshake jobs in flight (wireguard-go's only signal). Datagrams that fail mac1 never
/// count, so junk cannot push real clients onto the cookie path.
struct HandshakeGate {
    /// More mac1-valid initiations than this within one second put the interface under load.
    static let underLoadInitiationsPerSecond = 64
    /// How long the under-load state lasts after the last burst (wireguard-go: 1 s).
    static let underLoadHold: Duration = .seconds(1)
    /// Handshake jobs in flight at which we are under load too, whatever the rate:
    /// wireguard-go's figure, an eighth of its 1024-job queue.
    static let underLoadBacklog = 128

    /// What to do with a handshake message.
    enum Verdict {
        /// Go on: compute it.
        case admit
        /// Refuse it, for this reason.
        case drop(DropReason)
        /// Under load without a valid mac2: answer with a cookie reply (then drop it as
        /// `invalid-mac2`).
        case cookieReply
    }

    private(set) var cookieChecker: CookieChecker
    private var rateLimiter = HandshakeRateLimiter()
    private var windowStart: Instant = .zero
    private var initiationsInWindow = 0
    private var underLoadUntil: Instant = .zero

    init(identity: HandshakeIdentity) {
        cookieChecker = CookieChecker(identity: identity)
    }

    /// The verdict on `message` (an initiation or a response) from `source`, with
    /// `jobsInFlight` handshake jobs made and not yet answered.
    mutating func check(
        _ message: UnsafeRawBufferPointer, from source: Endpoint, isInitiation: Bool, jobsInFlight: Int, now: Instant
    ) -> Verdict {
        guard cookieChecker.verifyMAC1(message) else { return .drop(.invalidMAC1) }
        if isInitiation { countInitiation(now: now) }
        guard isUnderLoad(jobsInFlight: jobsInFlight, now: now) else { return .admit }
        guard cookieChecker.verifyMAC2(message, source: source, now: now) else { return .cookieReply }
        return rateLimiter.allow(source, now: now) ? .admit : .drop(.rateLimited)
    }

    /// Writes the cookie reply to `message` from `source` (64 bytes).
    mutating func writeCookieReply(
        answering message: UnsafeRawBufferPointer, source: Endpoint, now: Instant, entropy: inout some EntropySource,
        into reply: UnsafeMutableRawBufferPointer
    ) {
        cookieChecker.writeCookieReply(answering: message, source: source, now: now, entropy: &entropy, into: reply)
    }

    /// Whether handshake messages now need a valid mac2 (and face the per-source rate limit).
    mutating func isUnderLoad(jobsInFlight: Int, now: Instant) -> Bool {
        if jobsInFlight >= Self.underLoadBacklog { underLoadUntil = now + Self.underLoadHold }
        return now < underLoadUntil
    }

    /// Counts an initiation whose mac1 verified.
    private mutating func countInitiation(now: Instant) {
        if now - windowStart >= .seconds(1) {
            windowStart = now
            initiationsInWindow = 0
        }
        initiationsInWindow += 1
        if initiationsInWindow > Self.underLoadInitiationsPerSecond { underLoadUntil = now + Self.underLoadHold }
    }
}
