// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics

/// A ``Wakeup`` for ``FakePoller``: readable from ``signal()`` until ``drain()``.
///
/// Thread-safe, as the seam requires: the state is atomic.
public final class FakeWakeup: Wakeup, FakePollable, Sendable {
    public let pollHandle: PollHandle
    private let pending = Atomic<Int>(0)
    private let signals = Atomic<Int>(0)

    public init() {
        pollHandle = FakeHandleTable.allocate()
        FakeHandleTable.attach(self)
    }

    deinit { FakeHandleTable.detach(pollHandle) }

    public func signal() {
        pending.add(1, ordering: .releasing)
        signals.add(1, ordering: .relaxed)
    }

    public func drain() { pending.store(0, ordering: .releasing) }

    /// True between a signal and the next drain.
    public var isSignalled: Bool { pending.load(ordering: .acquiring) > 0 }
    /// Signals so far.
    public var signalCount: Int { signals.load(ordering: .relaxed) }

    public var readiness: PollEvents { isSignalled ? .readable : [] }
}
