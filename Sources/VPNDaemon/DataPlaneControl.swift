// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The control plane's handle on a running ``DataPlane``: ask for a status snapshot, ask it to
/// stop. Every call is thread-safe; the data plane sees requests at its next iteration (the
/// wakeup makes that immediate).
public final class DataPlaneControl: Sendable {
    let wakeup: any Wakeup
    private let stop = Atomic<Bool>(false)
    private let wantSnapshot = Atomic<Bool>(false)
    private let snapshot = Mutex<(generation: UInt64, status: TunnelStatus?)>((0, nil))

    public init(wakeup: any Wakeup) { self.wakeup = wakeup }

    /// Asks the data plane to return from ``DataPlane/run()``.
    public func requestStop() {
        stop.store(true, ordering: .releasing)
        wakeup.signal()
    }

    var stopRequested: Bool { stop.load(ordering: .acquiring) }
    var snapshotRequested: Bool { wantSnapshot.load(ordering: .relaxed) }

    func publish(_ status: TunnelStatus) {
        wantSnapshot.store(false, ordering: .relaxed)
        snapshot.withLock { $0 = ($0.generation &+ 1, status) }
    }

    /// Asks for a fresh snapshot and returns the generation to wait for with ``snapshot(newerThan:)``.
    public func requestSnapshot() -> UInt64 {
        let generation = snapshot.withLock { $0.generation }
        wantSnapshot.store(true, ordering: .relaxed)
        wakeup.signal()
        return generation
    }

    /// The latest snapshot if it is newer than `generation`.
    public func snapshot(newerThan generation: UInt64) -> TunnelStatus? {
        snapshot.withLock { $0.generation > generation ? $0.status : nil }
    }

    /// The latest snapshot, however old.
    public var latestSnapshot: TunnelStatus? { snapshot.withLock { $0.status } }
}
