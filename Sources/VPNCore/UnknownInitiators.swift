// SPDX-License-Identifier: MIT
import VPNBasics

/// One static public key that sent us initiations but is no configured peer (`unknown-peer`
/// drops), for `vpnd show` and `vpnd doctor`: a client missing from this end's config.
public struct UnknownInitiator: Sendable, Equatable {
    /// The initiator's static public key, as it decrypted from its initiation.
    public var publicKey: Bytes32
    /// Initiations from this key since it was first remembered.
    public var initiations: UInt64
    /// When the latest one arrived.
    public var lastSeen: Instant
    /// Where the latest one came from.
    public var source: Endpoint

    public init(publicKey: Bytes32, initiations: UInt64, lastSeen: Instant, source: Endpoint) {
        self.publicKey = publicKey
        self.initiations = initiations
        self.lastSeen = lastSeen
        self.source = source
    }
}

/// The last few distinct unknown initiators (at most ``capacity``), each with a count: a new key
/// beyond that replaces the one heard from longest ago. Its storage is reserved up front, so
/// noting one allocates nothing.
///
/// Not thread-safe; owned by the tunnel's thread.
struct UnknownInitiators {
    /// How many distinct keys are kept.
    static let capacity = 4

    private(set) var entries: [UnknownInitiator]

    init() {
        entries = []
        entries.reserveCapacity(Self.capacity)
    }

    /// Counts one initiation by `publicKey` from `source` at `now`.
    mutating func note(_ publicKey: Bytes32, from source: Endpoint, now: Instant) {
        if let i = entries.firstIndex(where: { $0.publicKey == publicKey }) {
            entries[i].initiations &+= 1
            entries[i].lastSeen = now
            entries[i].source = source
            return
        }
        let entry = UnknownInitiator(publicKey: publicKey, initiations: 1, lastSeen: now, source: source)
        if entries.count < Self.capacity {
            entries.append(entry)
            return
        }
        var oldest = 0
        for i in entries.indices where entries[i].lastSeen < entries[oldest].lastSeen { oldest = i }
        entries[oldest] = entry
    }
}
