// SPDX-License-Identifier: MIT

// Fixed-width field readers and writers for wire formats. They read and write unaligned, allocate
// nothing, and the buffer-pointer forms check bounds with a precondition (a bounds failure is a
// programmer error: callers check a message's length before reading its fields).

extension UnsafeRawPointer {
    /// The little-endian `UInt16` at `offset`, read unaligned.
    @inlinable
    public func loadLE16(at offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The little-endian `UInt32` at `offset`, read unaligned.
    @inlinable
    public func loadLE32(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The little-endian `UInt64` at `offset`, read unaligned.
    @inlinable
    public func loadLE64(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The big-endian (network order) `UInt16` at `offset`, read unaligned.
    @inlinable
    public func loadBE16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The big-endian (network order) `UInt32` at `offset`, read unaligned.
    @inlinable
    public func loadBE32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UnsafeMutableRawPointer {
    /// Writes `value` little-endian at `offset`, unaligned.
    @inlinable
    public func storeLE16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Writes `value` little-endian at `offset`, unaligned.
    @inlinable
    public func storeLE32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }

    /// Writes `value` little-endian at `offset`, unaligned.
    @inlinable
    public func storeLE64(_ value: UInt64, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Writes `value` big-endian (network order) at `offset`, unaligned.
    @inlinable
    public func storeBE16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// Writes `value` big-endian (network order) at `offset`, unaligned.
    @inlinable
    public func storeBE32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
}

extension UnsafeRawBufferPointer {
    @inlinable
    func checkedBase(_ offset: Int, _ size: Int) -> UnsafeRawPointer {
        precondition(offset >= 0 && offset <= count - size, "wire field read past the end of the buffer")
        return baseAddress!
    }

    /// The little-endian `UInt16` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE16(at offset: Int) -> UInt16 { checkedBase(offset, 2).loadLE16(at: offset) }

    /// The little-endian `UInt32` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE32(at offset: Int) -> UInt32 { checkedBase(offset, 4).loadLE32(at: offset) }

    /// The little-endian `UInt64` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE64(at offset: Int) -> UInt64 { checkedBase(offset, 8).loadLE64(at: offset) }

    /// The big-endian `UInt16` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadBE16(at offset: Int) -> UInt16 { checkedBase(offset, 2).loadBE16(at: offset) }

    /// The big-endian `UInt32` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadBE32(at offset: Int) -> UInt32 { checkedBase(offset, 4).loadBE32(at: offset) }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable
    func checkedBase(_ offset: Int, _ size: Int) -> UnsafeMutableRawPointer {
        precondition(offset >= 0 && offset <= count - size, "wire field access past the end of the buffer")
        return baseAddress!
    }

    /// The little-endian `UInt16` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE16(at offset: Int) -> UInt16 { UnsafeRawPointer(checkedBase(offset, 2)).loadLE16(at: offset) }

    /// The little-endian `UInt32` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE32(at offset: Int) -> UInt32 { UnsafeRawPointer(checkedBase(offset, 4)).loadLE32(at: offset) }

    /// The little-endian `UInt64` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadLE64(at offset: Int) -> UInt64 { UnsafeRawPointer(checkedBase(offset, 8)).loadLE64(at: offset) }

    /// The big-endian `UInt16` at `offset`; the field must lie inside the buffer.
    @inlinable
    public func loadBE16(at offset: Int) -> UInt16 { UnsafeRawPointer(checkedBase(offset, 2)).loadBE16(at: offset) }

    /// Writes `value` little-endian at `offset`; the field must lie inside the buffer.
    @inlinable
    public func storeLE16(_ value: UInt16, at offset: Int) { checkedBase(offset, 2).storeLE16(value, at: offset) }

    /// Writes `value` little-endian at `offset`; the field must lie inside the buffer.
    @inlinable
    public func storeLE32(_ value: UInt32, at offset: Int) { checkedBase(offset, 4).storeLE32(value, at: offset) }

    /// Writes `value` little-endian at `offset`; the field must lie inside the buffer.
    @inlinable
    public func storeLE64(_ value: UInt64, at offset: Int) { checkedBase(offset, 8).storeLE64(value, at: offset) }

    /// Writes `value` big-endian at `offset`; the field must lie inside the buffer.
    @inlinable
    public func storeBE16(_ value: UInt16, at offset: Int) { checkedBase(offset, 2).storeBE16(value, at: offset) }
}
