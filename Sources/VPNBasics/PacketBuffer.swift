// SPDX-License-Identifier: MIT

/// A window onto one fixed-capacity packet slot, with headroom in front and tailroom behind.
///
/// A `PacketBuffer` does not own its memory: slots come from a ``PacketSlab`` allocated once at
/// start-up, so the data path allocates nothing per packet. Headers are pushed into the headroom
/// and authentication tags appended into the tailroom, so a packet read from the tun device at
/// `headroom` is sealed in place and sent without a copy.
///
/// Not thread-safe: a buffer belongs to one data-plane thread at a time.
public struct PacketBuffer {
    /// The start of the slot.
    public let base: UnsafeMutableRawPointer
    /// The slot's size in bytes.
    public let capacity: Int
    @usableFromInline var _start: Int
    @usableFromInline var _count: Int

    /// Offset of the first byte of the packet within the slot.
    @inlinable public var start: Int { _start }
    /// Length of the packet in bytes.
    @inlinable public var count: Int { _count }

    /// A buffer over `capacity` bytes at `base`, empty, with `headroom` bytes in front.
    @inlinable
    public init(base: UnsafeMutableRawPointer, capacity: Int, headroom: Int) {
        precondition(headroom >= 0 && headroom <= capacity, "PacketBuffer headroom outside the slot")
        self.base = base
        self.capacity = capacity
        self._start = headroom
        self._count = 0
    }

    /// Free bytes in front of the packet.
    @inlinable public var headroom: Int { start }
    /// Free bytes behind the packet.
    @inlinable public var tailroom: Int { capacity - start - count }

    /// The packet's bytes.
    @inlinable
    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + start, count: count)
    }

    /// The free space behind the packet, for reading into or appending.
    @inlinable
    public var tail: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + start + count, count: tailroom)
    }

    /// Empties the buffer and puts the start `headroom` bytes into the slot.
    @inlinable
    public mutating func reset(headroom: Int) {
        precondition(headroom >= 0 && headroom <= capacity, "PacketBuffer headroom outside the slot")
        _start = headroom
        _count = 0
    }

    /// Grows the packet at the front by `n` bytes taken from the headroom; returns them.
    @inlinable
    @discardableResult
    public mutating func prepend(_ n: Int) -> UnsafeMutableRawBufferPointer {
        precondition(n >= 0 && n <= start, "pushed PacketBuffer past headroom")
        _start -= n
        _count += n
        return UnsafeMutableRawBufferPointer(start: base + start, count: n)
    }

    /// Grows the packet at the back by `n` bytes taken from the tailroom; returns them.
    @inlinable
    @discardableResult
    public mutating func append(_ n: Int) -> UnsafeMutableRawBufferPointer {
        precondition(n >= 0 && n <= tailroom, "pushed PacketBuffer past tailroom")
        let added = UnsafeMutableRawBufferPointer(start: base + start + count, count: n)
        _count += n
        return added
    }

    /// Copies `source` onto the end of the packet.
    @inlinable
    public mutating func append(contentsOf source: UnsafeRawBufferPointer) {
        let target = append(source.count)
        if source.count > 0 { target.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
    }

    /// Removes `n` bytes from the front of the packet (they become headroom).
    @inlinable
    public mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count, "removed more than the PacketBuffer holds")
        _start += n
        _count -= n
    }

    /// Shortens the packet to `newCount` bytes (the rest becomes tailroom).
    @inlinable
    public mutating func truncate(to newCount: Int) {
        precondition(newCount >= 0 && newCount <= count, "truncated PacketBuffer beyond its length")
        _count = newCount
    }

    /// Sets the packet length after bytes were written straight into ``tail`` (e.g. by `read`).
    @inlinable
    public mutating func didWrite(_ n: Int) {
        precondition(n >= 0 && n <= tailroom, "wrote past PacketBuffer tailroom")
        _count += n
    }
}

/// Memory for a fixed number of packet slots, allocated once and freed when the slab is dropped.
/// A slot's contents are undefined until written.
///
/// Not thread-safe: each data-plane thread owns its own slab.
public final class PacketSlab {
    /// Size of each slot in bytes.
    public let slotSize: Int
    /// Number of slots.
    public let slotCount: Int
    private let memory: UnsafeMutableRawPointer

    /// Allocates `slotCount` slots of `slotSize` bytes, 64-byte aligned.
    public init(slotSize: Int, slotCount: Int) {
        precondition(slotSize > 0 && slotCount > 0, "PacketSlab needs a positive size")
        let aligned = (slotSize + 63) & ~63
        self.slotSize = aligned
        self.slotCount = slotCount
        // Not zeroed: a slot's bytes are written (by a read or a copy) before they are read, and
        // pages of a large slab that are never used then cost no resident memory.
        self.memory = UnsafeMutableRawPointer.allocate(byteCount: aligned * slotCount, alignment: 64)
    }

    deinit { memory.deallocate() }

    /// Bytes every slot has beyond its headroom, payload and tailroom, so that a header the
    /// caller forgot to count never cuts a packet short.
    public static let slack = 64

    /// The slot size for buffers of `payload` bytes with `headroom` in front and `tailroom`
    /// behind: the one rule by which every slab of the data path is sized.
    public static func slotSize(payload: Int, headroom: Int = 0, tailroom: Int = 0) -> Int {
        headroom + payload + tailroom + slack
    }

    /// A buffer over slot `index`, empty, with `headroom` bytes in front.
    @inlinable
    public func buffer(_ index: Int, headroom: Int) -> PacketBuffer {
        precondition(index >= 0 && index < slotCount, "PacketSlab slot out of range")
        return PacketBuffer(base: slotBase(index), capacity: slotSize, headroom: headroom)
    }

    @usableFromInline
    func slotBase(_ index: Int) -> UnsafeMutableRawPointer { memory + index * slotSize }
}

@available(*, unavailable)
extension PacketSlab: Sendable {}
