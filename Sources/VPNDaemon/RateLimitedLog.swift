// SPDX-License-Identifier: MIT
import Logging
import VPNBasics

/// Log lines that could repeat per packet, at most one per interval.
final class RateLimitedLog {
    private let interval: Duration
    private var last: Instant?

    init(interval: Duration) { self.interval = interval }

    func log(_ logger: Logger, now: Instant, _ message: @autoclosure () -> Logger.Message) {
        if let last, now - last < interval { return }
        last = now
        logger.warning(message())
    }
}
