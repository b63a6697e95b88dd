// SPDX-License-Identifier: MIT
import VPNBasics

/// Our local session indexes (the receiver index of every message sent to us) and the peer each
/// belongs to: one entry per keypair slot in use and per initiation waiting for its response.
struct IndexTable {
    private var peers: [UInt32: UInt32]

    init(expectedPeers: Int) {
        // Up to three keypairs and one pending initiation per peer, with room to spare.
        peers = Dictionary(minimumCapacity: 64 * max(1, expectedPeers))
    }

    /// The peer number that `index` belongs to.
    @inline(__always)
    subscript(index: UInt32) -> UInt32? { peers[index] }

    mutating func insert(_ index: UInt32, peer: UInt32) { peers[index] = peer }

    mutating func remove(_ index: UInt32) { peers[index] = nil }

    /// Removes indexes a keypair slot change retired.
    mutating func remove(_ indexes: [UInt32]) {
        for index in indexes { peers[index] = nil }
    }

    /// A fresh random index that no entry uses.
    func newIndex(using entropy: inout some EntropySource) -> UInt32 {
        HandshakeIdentity.newLocalIndex(using: &entropy) { peers[$0] != nil }
    }
}
