// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// One session's transport keys and the state that goes with them: indexes, the sending
/// counter and the receiving replay window (whitepaper 5.4.6).
///
/// Not thread-safe; owned by one data-plane thread.
public struct Keypair: Sendable {
    /// Key for messages we send, ready for the session's cipher.
    public let sendKey: TransportKey
    /// Key for messages we receive, ready for the session's cipher.
    public let receiveKey: TransportKey
    /// Our index: the receiver index the peer puts in its messages to us.
    public let localIndex: UInt32
    /// The peer's index: the receiver index we put in our messages.
    public let remoteIndex: UInt32
    /// When the handshake that made the keys completed.
    public let created: Instant
    /// True when we initiated the handshake (only the initiator rekeys on age).
    public let isInitiator: Bool
    /// The next counter to send with.
    public var sendCounter: UInt64 = 0
    /// Counters already received.
    public var replay = ReplayWindow()

    /// The AEAD of the session's transport data (bound into its handshake by the identifier).
    public var cipher: TransportCipher { sendKey.cipher }

    /// A keypair from a handshake's keys; `cipher` prepares them (AES-256-GCM expands its key
    /// schedule here, once per session).
    public init(sendKey: SecretKey, receiveKey: SecretKey, localIndex: UInt32, remoteIndex: UInt32,
                created: Instant, isInitiator: Bool, cipher: TransportCipher = .chaCha20Poly1305) {
        self.sendKey = TransportKey(sendKey, cipher: cipher)
        self.receiveKey = TransportKey(receiveKey, cipher: cipher)
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.created = created
        self.isInitiator = isInitiator
    }
}

/// The three keypair slots of a peer (whitepaper 6.1, wireguard-go's keypairs):
/// `current` sends and receives; `previous` still receives (packets in flight across a rekey);
/// `next` is a responder's new session, received on but not sent with until the initiator's
/// first data message confirms it.
///
/// The slots live in a box made with the first keypair and dropped by ``clear()``: a keypair
/// holds a 1 KiB replay window, and a peer without a session (most of a large server's) holds
/// none of that. A value has one owner, its ``Peer``: copies would share the box.
public struct KeypairSlots: @unchecked Sendable {
    @usableFromInline final class Storage {
        @usableFromInline var current: Keypair?
        @usableFromInline var previous: Keypair?
        @usableFromInline var next: Keypair?
        @usableFromInline init() {}
    }

    // @unchecked Sendable: the box is never shared between two KeypairSlots values (it is made
    // here and only copied with the Peer that owns it, on one data-plane thread).
    @usableFromInline var storage: Storage?

    public init() {}

    // Each slot is read from the box (nil without one) and changed in place in it (`_modify`
    // makes the box first); an assignment goes through `_modify` too.

    @inlinable
    public var current: Keypair? {
        get { storage?.current }
        _modify {
            let storage = box()
            yield &storage.current
        }
    }

    @inlinable
    public var previous: Keypair? {
        get { storage?.previous }
        _modify {
            let storage = box()
            yield &storage.previous
        }
    }

    @inlinable
    public var next: Keypair? {
        get { storage?.next }
        _modify {
            let storage = box()
            yield &storage.next
        }
    }

    /// True when no slot holds a keypair.
    public var isEmpty: Bool {
        guard let storage else { return true }
        return storage.current == nil && storage.previous == nil && storage.next == nil
    }

    /// Whether the box is allocated (from the first keypair until ``clear()``).
    var isAllocated: Bool { storage != nil }

    @usableFromInline
    mutating func box() -> Storage {
        if let storage { return storage }
        let made = Storage()
        storage = made
        return made
    }

    /// Which slot holds the keypair with `localIndex`.
    public enum Slot: Sendable { case current, previous, next }

    /// The slot whose keypair has `localIndex`, if any.
    @inlinable
    public func slot(forLocalIndex index: UInt32) -> Slot? {
        guard let storage else { return nil }
        if storage.current?.localIndex == index { return .current }
        if storage.next?.localIndex == index { return .next }
        if storage.previous?.localIndex == index { return .previous }
        return nil
    }

    /// Calls `body` with the keypair in `slot`, in place (no copy of its replay window).
    /// The slot must be occupied.
    @inlinable
    public mutating func withKeypair<R>(_ slot: Slot, _ body: (inout Keypair) -> R) -> R {
        let storage = storage!
        switch slot {
        case .current: return body(&storage.current!)
        case .previous: return body(&storage.previous!)
        case .next: return body(&storage.next!)
        }
    }

    /// Installs a keypair made by a handshake we initiated: it is confirmed at once.
    /// Returns the local indexes that left the slots (to retire from the index table).
    ///
    /// As wireguard-go does: an unconfirmed `next` becomes `previous` (the peer may already send
    /// on it) and `current` is retired; otherwise `current` becomes `previous`.
    public mutating func installInitiated(_ keypair: Keypair) -> [UInt32] {
        var retired: [UInt32] = []
        if let old = previous { retired.append(old.localIndex) }
        if let pending = next {
            if let old = current { retired.append(old.localIndex) }
            previous = pending
            next = nil
        } else {
            previous = current
        }
        current = keypair
        return retired
    }

    /// Installs a keypair made by a handshake we answered: it waits in `next` for confirmation;
    /// an older unconfirmed `next` and `previous` are retired.
    /// Returns the local indexes that left the slots.
    public mutating func installResponded(_ keypair: Keypair) -> [UInt32] {
        var retired: [UInt32] = []
        if let pending = next { retired.append(pending.localIndex) }
        if let old = previous { retired.append(old.localIndex) }
        previous = nil
        next = keypair
        return retired
    }

    /// Promotes `next` to `current` after the peer's first message on it.
    /// Returns the local index that left the slots, if any.
    public mutating func confirmNext() -> UInt32? {
        guard let confirmed = next else { return nil }
        let retired = previous?.localIndex
        previous = current
        current = confirmed
        next = nil
        return retired
    }

    /// Drops every keypair (their keys are zeroed when the last reference goes).
    /// Returns the local indexes that left the slots.
    public mutating func clear() -> [UInt32] {
        let retired = [current?.localIndex, previous?.localIndex, next?.localIndex].compactMap { $0 }
        storage = nil
        return retired
    }
}
