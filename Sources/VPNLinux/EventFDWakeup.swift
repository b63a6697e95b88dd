// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import VPNBasics

/// A cross-thread doorbell on an eventfd: ``signal()`` from any thread makes a poller watching
/// ``pollHandle`` report it readable; the owning loop then calls ``drain()``.
///
/// Thread-safe: the descriptor never changes and the kernel counter is atomic.
public final class EventFDWakeup: Wakeup, Sendable {
    private let fd: Int32

    public var pollHandle: PollHandle { PollHandle(rawValue: fd) }

    /// Creates the eventfd. The corresponding C call is `eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`.
    public init() throws(IOError) {
        switch Syscall.retrying({ eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC)) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("eventfd", subject: "", errno: errno)
        }
    }

    deinit { Syscall.close(fd) }

    /// Rings the doorbell (adds 1 to the counter; a full counter is already ringing).
    public func signal() {
        var one: UInt64 = 1
        _ = Syscall.retrying { write(fd, &one, 8) }
    }

    /// Resets the counter so the poller stops reporting the handle readable.
    public func drain() {
        var value: UInt64 = 0
        _ = Syscall.retrying { read(fd, &value, 8) }
    }
}
