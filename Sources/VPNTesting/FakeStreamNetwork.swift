// SPDX-License-Identifier: MIT
import VPNBasics

/// In-memory TCP: ``FakeStreamListener``s bound at endpoints, ``FakeStreamDialer``s that connect
/// to them, and byte pipes between the two ends of each connection.
///
/// The shaping options apply to connections made after they are set (both ends); each
/// ``FakeStreamConnection`` can also be changed on its own.
///
/// Not thread-safe; owned by one test thread.
public final class FakeStreamNetwork {
    /// The most bytes one `write` takes (a partial write when smaller than what is offered).
    public var writeChunk: Int = .max
    /// The most bytes one `read` returns.
    public var readChunk: Int = .max
    /// Bytes one direction of a connection buffers; a writer facing a full pipe would block.
    public var pipeCapacity: Int = 1 << 16

    private var listeners: [Endpoint: WeakListener] = [:]
    private var nextPort: UInt16 = 40000

    public init() {}

    func bind(_ listener: FakeStreamListener, at endpoint: Endpoint) throws(IOError) {
        if let existing = listeners[endpoint], existing.listener != nil {
            throw IOError(operation: "bind", subject: "\(endpoint)", errno: 98, reason: "address already in use (EADDRINUSE)")
        }
        listeners[endpoint] = WeakListener(listener: listener)
    }

    func unbind(_ endpoint: Endpoint) { listeners[endpoint] = nil }

    func listener(at endpoint: Endpoint) -> FakeStreamListener? { listeners[endpoint]?.listener }

    func ephemeralPort() -> UInt16 {
        defer { nextPort = nextPort == .max ? 40000 : nextPort + 1 }
        return nextPort
    }
}

private struct WeakListener {
    weak var listener: FakeStreamListener?
}

@available(*, unavailable)
extension FakeStreamNetwork: Sendable {}

/// One direction of a fake connection: bytes written at one end, read at the other.
final class FakeStreamPipe {
    var bytes: [UInt8] = []
    var head = 0
    let capacity: Int
    /// The writer closed: the reader sees end of stream once the bytes are read.
    var writerClosed = false
    /// The reader closed: the writer's next write fails (EPIPE).
    var readerClosed = false
    /// The connection was reset: both ends fail (ECONNRESET).
    var broken = false

    init(capacity: Int) { self.capacity = capacity }

    var available: Int { bytes.count - head }
    var space: Int { max(0, capacity - available) }

    func append(_ source: UnsafeRawBufferPointer) {
        if head > 0 && head == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            head = 0
        }
        bytes.append(contentsOf: source)
    }

    func take(into target: UnsafeMutableRawBufferPointer, count: Int) {
        bytes.withUnsafeBytes { target.baseAddress!.copyMemory(from: $0.baseAddress! + head, byteCount: count) }
        head += count
        if head > 4096 && head * 2 > bytes.count {
            bytes.removeFirst(head)
            head = 0
        }
    }
}
