// SPDX-License-Identifier: MIT
import Synchronization
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux
import VPNTesting

/// The daemon's two threads, started and stopped as `vpnd` does (real POSIX threads, fake I/O).
@Suite struct DaemonLifecycleTests {
    /// Refuses the thread named `refused`; counts the others.
    final class PickyThreads: ThreadStarter, Sendable {
        let refused: String
        let started = Atomic<Int>(0)
        init(refusing name: String) { refused = name }
        func start(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) -> (any StartedThread)? {
            guard name != refused else { return nil }
            started.add(1, ordering: .relaxed)
            return PosixThreads().start(name: name, stackSize: stackSize, body)
        }
    }

    /// Never reports anything; a wait sleeps a millisecond. Each thread gets its own.
    final class IdlePoller: Poller {
        func register(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {}
        func modify(_ handle: PollHandle, token: UInt64, events: PollEvents) throws(IOError) {}
        func unregister(_ handle: PollHandle) {}
        func wait(into events: UnsafeMutableBufferPointer<PollEvent>, timeout: Duration?) throws(IOError) -> Int {
            Posix.sleep(milliseconds: 1)
            return 0
        }
    }

    func makeDaemon() throws -> Daemon {
        let ids = TestIdentities()
        let network = FakeDatagramNetwork(seed: 1)
        let socket = try FakeDatagramSocket(network: network, endpoint: serverEndpoint)
        return try Daemon(Daemon.Parts(
            configuration: ids.serverConfiguration(), device: FakePacketDevice(name: "server0"),
            transport: UDPTransport(socket: socket, maxDatagram: maxMessage), poller: IdlePoller(),
            wakeup: FakeWakeup(), clock: ManualClock(), entropy: SeededEntropy(seed: 1),
            timestamps: CountingTimestamps(), logger: makeLogger(LogRecorder()),
            handshakeThread: (poller: IdlePoller(), doorbell: FakeWakeup())))
    }

    @Test("start runs the handshake and data-plane threads; stop ends and joins both")
    func startAndStop() throws {
        let daemon = try makeDaemon()
        let threads = PickyThreads(refusing: "none")
        let started = daemon.start(threads: threads, handshakeEntropy: SystemEntropy(), onFailure: {})
        #expect(started)
        #expect(threads.started.load(ordering: .relaxed) == 2)
        daemon.stop()  // returns only once both bodies have returned
    }

    @Test("a data-plane thread the system refuses: start is false and the handshake thread is stopped again")
    func refusedThread() throws {
        let daemon = try makeDaemon()
        let threads = PickyThreads(refusing: "vpnd-dataplane")
        let started = daemon.start(threads: threads, handshakeEntropy: SystemEntropy(), onFailure: {})
        #expect(!started)
        #expect(threads.started.load(ordering: .relaxed) == 1)
        daemon.stop()
    }
}
