// SPDX-License-Identifier: MIT
import VPNBasics

/// A ``Poller`` over fakes: level-triggered readiness computed from each fake's state at `wait`.
///
/// `wait` never sleeps. When nothing is ready it returns 0 at once, and if it was given a
/// ``ManualClock`` and a positive timeout it first moves that clock forward by the timeout, as if
/// the wait had run out. A nil timeout with nothing ready also returns 0 (an idle wake-up).
/// Registering a handle that is not a live fake, or twice, throws as epoll would.
///
/// Not thread-safe; owned by the thread that runs the data plane.
public final class FakePoller: Poller {
    /// One registered handle.
    public struct Registration: Sendable {
        public var handle: PollHandle
        public var token: UInt64
        public var events: PollEvents
    }

    private let clock: ManualClock?
    private var rotation = 0
    /// What is registered, in registration order.
    public private(set) var registrations: [Registration] = []
    /// Calls to ``wait(into:timeout:)``.
    public private(set) var waitCount = 0
    /// Waits that found nothing ready.
    public private(set) var idleWaitCount = 0
    /// How many events the last wait reported.
    public private(set) var lastReadyCount = 0
    /// The timeout the last wait was given.
    public private(set) var lastTimeout: Duration?
    /// Runs at the start of every wait: lets a test act "while the loop waits" (e.g. request a stop).
    public var onWait: (() -> Void)?

    /// A poller; with `clock`, idle waits advance it by their timeout.
    public init(clock: ManualClock? = nil) { self.clock = clock }

    /// The handles registered now.
    public var registeredHandles: [PollHandle] { registrations.map(\.handle) }

    public func register(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {
        guard FakeHandleTable.lookup(handle) != nil else {
            throw IOError(operation: "register", subject: "handle \(handle.rawValue)", errno: 9,
                          reason: "not a live fake (EBADF)")
        }
        guard !registrations.contains(where: { $0.handle == handle }) else {
            throw IOError(operation: "register", subject: "handle \(handle.rawValue)", errno: 17,
                          reason: "already registered (EEXIST)")
        }
        registrations.append(Registration(handle: handle, token: token, events: events))
    }

    public func modify(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {
        guard let i = registrations.firstIndex(where: { $0.handle == handle }) else {
            throw IOError(operation: "modify", subject: "handle \(handle.rawValue)", errno: 2,
                          reason: "not registered (ENOENT)")
        }
        registrations[i].token = token
        registrations[i].events = events
    }

    public func unregister(_ handle: PollHandle) {
        registrations.removeAll { $0.handle == handle }
    }

    public func wait(into events: UnsafeMutableBufferPointer<PollEvent>, timeout: Duration?) throws(IOError) -> Int {
        waitCount += 1
        lastTimeout = timeout
        onWait?()
        var filled = 0
        let count = registrations.count
        if count > 0 {
            // Start one further along each time, so a busy handle cannot hide the others.
            rotation = (rotation + 1) % count
            for step in 0..<count where filled < events.count {
                let registration = registrations[(rotation + step) % count]
                guard let object = FakeHandleTable.lookup(registration.handle) else { continue }
                let ready = object.readiness.intersection(registration.events.union(.hangup))
                if ready.isEmpty { continue }
                events[filled] = PollEvent(token: registration.token, events: ready)
                filled += 1
            }
        }
        lastReadyCount = filled
        if filled == 0 {
            idleWaitCount += 1
            if let clock, let timeout, timeout > .zero { clock.advance(by: timeout) }
        }
        return filled
    }
}

@available(*, unavailable)
extension FakePoller: Sendable {}
