// SPDX-License-Identifier: MIT
import VPNBasics

/// ``ThreadStarter`` on POSIX threads (``startThread(name:stackSize:_:)``), joined through a
/// semaphore the thread signals when its body returns.
public struct PosixThreads: ThreadStarter {
    public init() {}

    public func start(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) -> (any StartedThread)? {
        let done = Semaphore()
        let started = startThread(name: name, stackSize: stackSize) {
            body()
            done.signal()
        }
        return started ? Joined(done: done) : nil
    }

    private struct Joined: StartedThread {
        let done: Semaphore
        func join() { done.wait() }
    }
}
