// SPDX-License-Identifier: MIT
import VPNBasics

/// A message the core wants sent: the bytes, where to, and for which peer.
public struct OutgoingFrame {
    /// The complete message (handshake, cookie reply, keepalive or data).
    public var buffer: PacketBuffer
    /// The UDP endpoint, or the TCP connection's remote endpoint, to send to.
    public var destination: Endpoint
    /// The peer's number, or ``OutgoingFrame/noPeer`` for a reply to an unknown source.
    public var peer: UInt32

    /// The peer number of frames that belong to no configured peer (cookie replies).
    public static let noPeer = UInt32.max
}

/// A fixed-capacity FIFO of packet slots, allocated once: the core's outbox and each peer's
/// staging queue for packets that wait for a handshake.
///
/// Not thread-safe; owned by one data-plane thread.
public final class FrameQueue {
    private let slab: PacketSlab
    private var frames: [OutgoingFrame]
    private var head = 0
    /// Number of frames queued.
    public private(set) var count = 0
    /// Headroom each slot starts with.
    public let headroom: Int

    /// Maximum number of frames.
    public var capacity: Int { frames.count }
    /// True when no frame is queued.
    public var isEmpty: Bool { count == 0 }
    /// True when no slot is free.
    public var isFull: Bool { count == frames.count }

    /// A queue of `capacity` slots of `slotSize` bytes, each starting with `headroom` free bytes.
    public init(capacity: Int, slotSize: Int, headroom: Int) {
        precondition(capacity > 0, "FrameQueue needs a positive capacity")
        let slab = PacketSlab(slotSize: slotSize, slotCount: capacity)
        self.slab = slab
        self.headroom = headroom
        frames = (0..<capacity).map {
            OutgoingFrame(buffer: slab.buffer($0, headroom: headroom), destination: .none, peer: OutgoingFrame.noPeer)
        }
    }

    /// Claims the slot at the tail, empty with `headroom`, for the caller to fill through
    /// `body`; the frame is queued when `body` returns true. Returns false when full or refused.
    @discardableResult
    public func enqueue(destination: Endpoint, peer: UInt32, _ body: (inout PacketBuffer) -> Bool) -> Bool {
        guard !isFull else { return false }
        let index = (head + count) % capacity
        var frame = frameAt(index)
        frame.buffer.reset(headroom: headroom)
        frame.destination = destination
        frame.peer = peer
        guard body(&frame.buffer) else { return false }
        setFrame(frame, at: index)
        count += 1
        return true
    }

    /// Removes the frame at the head and hands it to `body` (the buffer is valid only inside).
    @discardableResult
    public func dequeue(_ body: (inout OutgoingFrame) -> Void) -> Bool {
        guard count > 0 else { return false }
        var frame = frameAt(head)
        body(&frame)
        head = (head + 1) % capacity
        count -= 1
        return true
    }

    /// Drops every queued frame.
    public func removeAll() {
        head = 0
        count = 0
    }

    func frameAt(_ index: Int) -> OutgoingFrame { frames[index] }
    func setFrame(_ frame: OutgoingFrame, at index: Int) { frames[index] = frame }
}

@available(*, unavailable)
extension FrameQueue: Sendable {}
