// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// A level-triggered epoll instance behind the ``Poller`` seam.
///
/// The kernel's `epoll_event` array is allocated once, here; ``wait(into:timeout:)`` allocates
/// nothing. Not thread-safe: owned by one data-plane thread; an ``EventFDWakeup`` interrupts it.
public final class EpollPoller: Poller {
    private let fd: Int32
    private let kernelEvents: UnsafeMutablePointer<epoll_event>
    /// The most events one ``wait(into:timeout:)`` returns.
    public let capacity: Int

    /// Creates the epoll instance. The corresponding C call is `epoll_create1(EPOLL_CLOEXEC)`.
    public init(capacity: Int = 64) throws(IOError) {
        precondition(capacity > 0, "EpollPoller capacity must be positive")
        switch Syscall.retrying({ epoll_create1(Int32(EPOLL_CLOEXEC)) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("epoll_create1", subject: "", errno: errno)
        }
        self.capacity = capacity
        kernelEvents = .allocate(capacity: capacity)
        kernelEvents.initialize(repeating: epoll_event(), count: capacity)
    }

    deinit {
        Syscall.close(fd)
        kernelEvents.deallocate()
    }

    private static func mask(_ events: PollEvents) -> UInt32 {
        var mask: UInt32 = 0
        if events.contains(.readable) { mask |= EPOLLIN.rawValue }
        if events.contains(.writable) { mask |= EPOLLOUT.rawValue }
        return mask
    }

    private func control(_ op: Int32, _ name: String, _ handle: PollHandle, token: UInt64, events: PollEvents)
        throws(IOError)
    {
        var event = epoll_event()
        event.events = EpollPoller.mask(events)
        event.data.u64 = token
        if case .failure(let errno) = Syscall.retrying({ epoll_ctl(fd, op, handle.rawValue, &event) }) {
            throw .system(name, subject: "fd \(handle.rawValue)", errno: errno)
        }
    }

    /// Watches `handle` for `events`, reported with `token`. The corresponding C call is
    /// `epoll_ctl(EPOLL_CTL_ADD)`.
    public func register(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {
        try control(EPOLL_CTL_ADD, "epoll_ctl(ADD)", handle, token: token, events: events)
    }

    /// Changes what `handle` is watched for. The corresponding C call is `epoll_ctl(EPOLL_CTL_MOD)`.
    public func modify(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {
        try control(EPOLL_CTL_MOD, "epoll_ctl(MOD)", handle, token: token, events: events)
    }

    /// Stops watching `handle` (no error when it was not watched). The corresponding C call is
    /// `epoll_ctl(EPOLL_CTL_DEL)`.
    public func unregister(_ handle: PollHandle) {
        var event = epoll_event()
        _ = Syscall.retrying { epoll_ctl(fd, EPOLL_CTL_DEL, handle.rawValue, &event) }
    }

    /// Waits until a handle is ready or `timeout` passes (nil: forever; zero: poll). The timeout is
    /// rounded up to whole milliseconds so that a wait never ends before its deadline. Fills
    /// `events` from the start and returns how many; 0 on timeout. Allocates nothing.
    ///
    /// The corresponding C call is `epoll_wait(2)`.
    public func wait(into events: UnsafeMutableBufferPointer<PollEvent>, timeout: Duration?) throws(IOError) -> Int {
        let maximum = Int32(min(events.count, capacity))
        if maximum == 0 { return 0 }
        let milliseconds: Int32
        if let timeout {
            let nanoseconds = max(0, timeout.nanosecondsClamped)
            let rounded = nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 == 0 ? 0 : 1)
            milliseconds = Int32(clamping: rounded)
        } else {
            milliseconds = -1
        }
        let result = Syscall.retrying { epoll_wait(fd, kernelEvents, maximum, milliseconds) }
        let count: Int
        switch result {
        case .success(let n): count = Int(n)
        case .failure(let errno): throw .system("epoll_wait", subject: "", errno: errno)
        }
        for i in 0..<count {
            let kernel = kernelEvents[i]
            var ready: PollEvents = []
            if kernel.events & EPOLLIN.rawValue != 0 { ready.insert(.readable) }
            if kernel.events & EPOLLOUT.rawValue != 0 { ready.insert(.writable) }
            if kernel.events & (EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 {
                ready.insert(.hangup)
            }
            events[i] = PollEvent(token: kernel.data.u64, events: ready)
        }
        return count
    }
}

@available(*, unavailable)
extension EpollPoller: Sendable {}
