// SPDX-License-Identifier: MIT
import Synchronization
import VPNBasics
import VPNCore

/// The peers' names (`# alice` on or after a `[Peer]` line), by public key: control-plane
/// metadata for `vpnd show` and the metrics' `name` label. The data plane never sees them.
///
/// Set at start from the config file and replaced whole on every successful reload; a peer
/// added over the WireGuard UAPI (`wg set`) has none. Thread-safe (the control socket's threads
/// read it while a reload replaces it).
final class PeerNames: Sendable {
    private let table: Mutex<[Bytes32: String]>

    init(_ names: [Bytes32: String] = [:]) { table = Mutex(names) }

    /// The names in `peers` (those that have one).
    static func of(_ peers: [Config.Peer]) -> [Bytes32: String] {
        var names: [Bytes32: String] = [:]
        for peer in peers { if let name = peer.name { names[peer.publicKey] = name } }
        return names
    }

    /// Every name now.
    var all: [Bytes32: String] { table.withLock { $0 } }

    /// Replaces every name with those of `peers`.
    func replace(with peers: [Config.Peer]) {
        let names = Self.of(peers)
        table.withLock { $0 = names }
    }
}
