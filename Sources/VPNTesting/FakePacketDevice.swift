// SPDX-License-Identifier: MIT
import VPNBasics

/// A tun/tap device in memory: tests ``inject(_:)`` packets for the daemon to read and find what
/// the daemon wrote in ``written``.
///
/// Readable while injected packets wait. With a `readinessSignal` (a real eventfd, say) the
/// device uses that signal's handle, rings it on inject and drains it once emptied, so a real
/// poller can watch a fake device.
///
/// Not thread-safe; owned by one test thread or data-plane thread.
public final class FakePacketDevice: PacketDevice, FakePollable {
    public let name: String
    public let pollHandle: PollHandle
    private let readinessSignal: (any Wakeup)?
    private var inbound: [[UInt8]] = []
    /// Packets the daemon wrote, oldest first.
    public private(set) var written: [[UInt8]] = []
    /// While false, ``write(_:)`` reports would-block (the packet is not recorded).
    public var acceptsWrites = true
    /// Writes refused while ``acceptsWrites`` was false.
    public private(set) var refusedWrites = 0
    /// Thrown by the next ``read(into:)``, then cleared.
    public var nextReadError: IOError?
    /// Packets read by the daemon so far.
    public private(set) var readCount = 0

    /// A device named `name`; with `readinessSignal`, readiness goes through that signal's handle.
    public init(name: String = "fake0", readinessSignal: (any Wakeup)? = nil) {
        self.name = name
        self.readinessSignal = readinessSignal
        pollHandle = readinessSignal?.pollHandle ?? FakeHandleTable.allocate()
        if readinessSignal == nil { FakeHandleTable.attach(self) }
    }

    deinit { if readinessSignal == nil { FakeHandleTable.detach(pollHandle) } }

    /// Queues `packet` for the daemon to read, as if the kernel had routed it to the interface.
    public func inject(_ packet: [UInt8]) {
        inbound.append(packet)
        readinessSignal?.signal()
    }

    /// Packets injected and not yet read.
    public var pendingCount: Int { inbound.count }

    /// Returns and forgets what the daemon wrote.
    public func takeWritten() -> [[UInt8]] {
        defer { written.removeAll() }
        return written
    }

    public var readiness: PollEvents { inbound.isEmpty ? .writable : [.readable, .writable] }

    public func read(into buffers: UnsafeMutableBufferPointer<PacketBuffer>) throws(IOError) -> Int {
        if let error = nextReadError {
            nextReadError = nil
            throw error
        }
        let count = min(buffers.count, inbound.count)
        for i in 0..<count {
            let packet = inbound[i]
            let tail = buffers[i].tail
            let n = min(packet.count, tail.count)  // a short buffer truncates, as read(2) does
            packet.withUnsafeBytes { tail.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            buffers[i].didWrite(n)
        }
        inbound.removeFirst(count)
        readCount += count
        if inbound.isEmpty { readinessSignal?.drain() }
        return count
    }

    public func write(_ buffer: PacketBuffer) throws(IOError) -> Bool {
        guard acceptsWrites else {
            refusedWrites += 1
            return false
        }
        written.append(Array(UnsafeRawBufferPointer(buffer.bytes)))
        return true
    }
}

@available(*, unavailable)
extension FakePacketDevice: Sendable {}
