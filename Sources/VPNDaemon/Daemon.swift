// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore

/// One interface's daemon, assembled in one place from the seams: the sans-IO core (a
/// ``Tunnel``), the ``DataPlane`` that moves its packets, the ``HandshakeWorker`` and the
/// processor its thread owns, and the control handle. `vpnd` builds it from the Linux backends
/// and starts its two threads with ``start(threads:handshakeEntropy:onFailure:)``; the tests
/// build it from fakes the same way and drive it by hand (``DataPlane/runOnce(timeoutCap:)``,
/// ``runHandshakeJobs(entropy:)``).
///
/// Not thread-safe: one thread builds, starts and stops it; once started, `tunnel` and
/// `dataPlane` belong to the data-plane thread, the handshake processor to the handshake thread.
public final class Daemon {

    /// What a daemon is made of.
    public struct Parts {
        public var configuration: TunnelConfiguration
        public var device: any PacketDevice
        public var transport: any Transport
        /// The data plane's poller and the wakeup that rings it (control requests, outcomes).
        public var poller: any Poller
        public var wakeup: any Wakeup
        public var clock: any Clock
        /// Keys, ephemerals and indexes of the packet thread.
        public var entropy: any EntropySource
        /// Wall-clock timestamps for initiations.
        public var timestamps: any TimestampSource
        public var logger: Logger
        public var offloads: DataPlaneOffloads
        /// Where the handshakes' X25519 runs: on a handshake thread that waits on `poller` and is
        /// rung by `doorbell` (the daemon), or inline on the packet thread (nil: most tests).
        public var handshakeThread: (poller: any Poller, doorbell: any Wakeup)?
        /// Called on the data-plane thread when a peer's endpoint changes.
        public var endpointsChanged: (@Sendable () -> Void)?
        /// Binds a new UDP socket for `listen_port` (on the data-plane thread); nil over TCP.
        public var rebind: ((UInt16) throws(IOError) -> any DatagramSocket)?
        /// More packet threads (``CryptoPool``): one doorbell and poller per extra thread, and the
        /// wakeup (with its poller) the data-plane thread waits on for them; nil: one packet thread.
        public var packetThreads: (workers: [(doorbell: any Wakeup, poller: any Poller)], finished: (wakeup: any Wakeup, poller: any Poller))?

        public init(
            configuration: TunnelConfiguration, device: any PacketDevice, transport: any Transport, poller: any Poller,
            wakeup: any Wakeup, clock: any Clock, entropy: any EntropySource, timestamps: any TimestampSource,
            logger: Logger, offloads: DataPlaneOffloads = DataPlaneOffloads(),
            handshakeThread: (poller: any Poller, doorbell: any Wakeup)? = nil,
            endpointsChanged: (@Sendable () -> Void)? = nil,
            packetThreads: (workers: [(doorbell: any Wakeup, poller: any Poller)], finished: (wakeup: any Wakeup, poller: any Poller))? = nil
        ) {
            self.packetThreads = packetThreads
            self.configuration = configuration
            self.device = device
            self.transport = transport
            self.poller = poller
            self.wakeup = wakeup
            self.clock = clock
            self.entropy = entropy
            self.timestamps = timestamps
            self.logger = logger
            self.offloads = offloads
            self.handshakeThread = handshakeThread
            self.endpointsChanged = endpointsChanged
        }
    }

    public let control: DataPlaneControl
    public let tunnel: Tunnel
    public let dataPlane: DataPlane
    /// The handshake thread's queues (nil: handshakes inline).
    public let worker: HandshakeWorker?
    /// The extra packet threads (nil: one).
    public let cryptoPool: CryptoPool?
    private var processor: HandshakeProcessor?
    private let handshakePoller: (any Poller)?
    private let logger: Logger
    private var threads: [any StartedThread] = []

    /// Builds the core, the data plane and (with `parts.handshakeThread`) the handshake worker,
    /// and registers the device, the transport and the wakeup with the poller.
    public init(_ parts: Parts) throws(IOError) {
        logger = parts.logger
        control = DataPlaneControl(wakeup: parts.wakeup, endpointsChanged: parts.endpointsChanged)
        if let thread = parts.handshakeThread {
            let worker = HandshakeWorker(doorbell: thread.doorbell, dataPlaneWakeup: parts.wakeup)
            self.worker = worker
            handshakePoller = thread.poller
            tunnel = Tunnel(
                configuration: parts.configuration, entropy: parts.entropy, timestamps: parts.timestamps,
                handshakes: .deferred(capacity: worker.capacity))
            processor = tunnel.makeHandshakeProcessor()
        } else {
            worker = nil
            handshakePoller = nil
            tunnel = Tunnel(configuration: parts.configuration, entropy: parts.entropy, timestamps: parts.timestamps)
        }
        dataPlane = try DataPlane(
            tunnel: tunnel, device: parts.device, transport: parts.transport, poller: parts.poller, clock: parts.clock,
            control: control, logger: parts.logger, offloads: parts.offloads, handshakes: worker)
        dataPlane.rebind = parts.rebind
        if let packetThreads = parts.packetThreads, !packetThreads.workers.isEmpty {
            let pool = try CryptoPool(batch: tunnel.crypto, workers: packetThreads.workers, finished: packetThreads.finished)
            cryptoPool = pool
            dataPlane.cryptoPool = pool
        } else {
            cryptoPool = nil
        }
    }

    /// Computes the jobs waiting for the handshake thread now, on the caller's thread, as that
    /// thread would (tests); returns how many.
    @discardableResult
    public func runHandshakeJobs(entropy: inout some EntropySource) -> Int {
        guard let worker, processor != nil else { return 0 }
        return worker.processPending(with: &processor!, entropy: &entropy)
    }

    /// Starts the handshake thread (`vpnd-handshake`, with `handshakeEntropy`), then the
    /// data-plane thread (`vpnd-dataplane`). `onFailure` is called, on that thread, when either
    /// stops by itself: the daemon cannot go on. False when a thread could not be started; what
    /// did start is stopped again.
    public func start(
        threads starter: any ThreadStarter, handshakeEntropy: any EntropySource & Sendable,
        onFailure: @escaping @Sendable () -> Void
    ) -> Bool {
        if let worker, let processor, let poller = handshakePoller {
            // Before the data plane's first packet: its first handshake goes to this thread.
            let box = ThreadHandoff((processor: processor, poller: poller, entropy: handshakeEntropy))
            let logger = logger
            guard let thread = starter.start(name: "vpnd-handshake", stackSize: 1 << 20, {
                let parts = box.value
                if let error = worker.run(processor: parts.processor, entropy: parts.entropy, poller: parts.poller) {
                    // Without this thread no session can be made: stop, as a dead data plane does.
                    logger.error("handshake thread stopped: \(error)")
                    onFailure()
                }
            }) else {
                logger.error("cannot start the handshake thread")
                return false
            }
            threads.append(thread)
        }
        if let cryptoPool, !cryptoPool.start(threads: starter) {
            logger.error("cannot start the packet threads")
            stop()
            return false
        }
        let dataPlane = ThreadHandoff(self.dataPlane)
        guard let thread = starter.start(name: "vpnd-dataplane", stackSize: 1 << 20, {
            if dataPlane.value.run() != nil { onFailure() }
        }) else {
            logger.error("cannot start the data-plane thread")
            stop()
            return false
        }
        threads.append(thread)
        return true
    }

    /// Stops the data plane, then the handshake thread, and waits for both; then the packet
    /// threads (idle once the data plane stopped).
    public func stop() {
        control.requestStop()
        worker?.requestStop()
        for thread in threads.reversed() { thread.join() }
        threads.removeAll()
        cryptoPool?.stop()
    }
}

/// Hands a thread-confined value to the thread that will own it from then on.
private final class ThreadHandoff<Value>: @unchecked Sendable {
    // @unchecked: the value is made on the starting thread and, once handed over, used by the new
    // thread alone (Daemon.start); the starting thread never touches it again.
    let value: Value
    init(_ value: Value) { self.value = value }
}

@available(*, unavailable)
extension Daemon: Sendable {}
