// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics

/// A fake I/O object whose readiness a ``FakePoller`` computes from its state, level-triggered.
public protocol FakePollable: Pollable {
    /// What the object is ready for right now; `.hangup` when its peer is gone or it failed.
    var readiness: PollEvents { get }
}

/// Hands out poll handles for fakes and finds the fake behind a handle.
///
/// Handles are unique in the process and start far above real descriptors, so fakes of tests
/// that run in parallel never collide and a fake handle given to a real poller fails loudly.
/// Thread-safe.
enum FakeHandleTable {
    private static let next = Atomic<Int32>(1_000_000)
    private static let objects = Mutex<[Int32: WeakFake]>([:])

    /// A new handle, not yet attached to an object.
    static func allocate() -> PollHandle {
        PollHandle(rawValue: next.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// Makes `object` the fake behind its handle (held weakly).
    static func attach(_ object: any FakePollable) {
        let entry = WeakFake(object: object)
        let key = object.pollHandle.rawValue
        objects.withLock { $0[key] = entry }
    }

    /// Forgets `handle` (the fake is gone).
    static func detach(_ handle: PollHandle) {
        _ = objects.withLock { $0.removeValue(forKey: handle.rawValue) }
    }

    /// The live fake behind `handle`, if any.
    static func lookup(_ handle: PollHandle) -> (any FakePollable)? {
        let entry = objects.withLock { $0[handle.rawValue] }
        return entry?.object
    }
}

/// A weak reference to a fake, for ``FakeHandleTable``.
///
/// The one `@unchecked Sendable` of VPNTesting: the table only stores and returns these under its
/// mutex; the fake itself is used by the one thread that owns it.
struct WeakFake: @unchecked Sendable {
    weak var object: (any FakePollable)?
}
