// SPDX-License-Identifier: MIT
import VPNBasics

/// Cryptokey routing: the longest-prefix match from an IP address to a peer id.
///
/// Used both ways (WireGuard whitepaper, section 2): an outgoing packet's destination picks the
/// peer to seal it for, and a decrypted packet's source must map to the peer that sent it, or
/// the packet is dropped (`sourceNotAllowed`). IPv4 and IPv6 live in separate binary tries, so
/// `::/0` never covers IPv4 and `0.0.0.0/0` never covers IPv6.
///
/// Built at start-up with ``insert(_:peer:)``; lookups walk at most 32 (IPv4) or 128 (IPv6)
/// nodes of one contiguous array and never allocate. A value type: not thread-safe to mutate;
/// each data-plane thread reads its own copy (copies share storage until written).
public struct AllowedIPs: Sendable {
    /// One trie node: two child indices (0 means none; the root, index 0, is never a child)
    /// and the peer of the prefix ending here, if any.
    @usableFromInline
    struct Node: Sendable {
        @usableFromInline var zero: UInt32 = 0
        @usableFromInline var one: UInt32 = 0
        @usableFromInline var peer: UInt32 = 0
        @usableFromInline var hasPeer = false

        @usableFromInline init() {}
    }

    @usableFromInline var ipv4Nodes: ContiguousArray<Node> = [Node()]
    @usableFromInline var ipv6Nodes: ContiguousArray<Node> = [Node()]

    /// An empty table: every lookup answers nil.
    public init() {}

    /// Routes `prefix` (host bits ignored) to `peer`, replacing the peer it had, as `wg set` does.
    public mutating func insert(_ prefix: IPPrefix, peer: UInt32) {
        let (high, low) = Self.key(prefix.address)
        let length = Int(prefix.length)
        if prefix.address.isIPv4 {
            Self.insert(into: &ipv4Nodes, high: high, low: low, length: length, peer: peer)
        } else {
            Self.insert(into: &ipv6Nodes, high: high, low: low, length: length, peer: peer)
        }
    }

    /// Removes every prefix routed to `peer`.
    public mutating func removeAll(peer: UInt32) {
        for i in ipv4Nodes.indices where ipv4Nodes[i].hasPeer && ipv4Nodes[i].peer == peer { ipv4Nodes[i].hasPeer = false }
        for i in ipv6Nodes.indices where ipv6Nodes[i].hasPeer && ipv6Nodes[i].peer == peer { ipv6Nodes[i].hasPeer = false }
    }

    /// The peer whose longest prefix contains `address`, or nil.
    @inlinable
    public func lookup(_ address: IPAddress) -> UInt32? {
        switch address {
        case .v4(let value): return lookup(ipv4: value)
        case .v6(let high, let low): return lookup(ipv6High: high, low: low)
        }
    }

    /// The peer for an IPv4 address given as its numeric value (`10.8.0.1` is `0x0A080001`).
    @inlinable
    public func lookup(ipv4 value: UInt32) -> UInt32? {
        Self.walk(ipv4Nodes, high: UInt64(value) << 32, low: 0, width: 32)
    }

    /// The peer for an IPv6 address given as its high and low 64 bits.
    @inlinable
    public func lookup(ipv6High high: UInt64, low: UInt64) -> UInt32? {
        Self.walk(ipv6Nodes, high: high, low: low, width: 128)
    }

    /// The peer for an address in the 16-byte form of `Endpoint.address` and
    /// ``InnerPacket/sourceAddress(of:)``: network order, IPv4-mapped (`::ffff:a.b.c.d`) for IPv4,
    /// which is looked up in the IPv4 table.
    @inlinable
    public func lookup(mapped storage: (UInt64, UInt64)) -> UInt32? {
        let high = UInt64(bigEndian: storage.0)
        let low = UInt64(bigEndian: storage.1)
        if high == 0 && low >> 32 == 0xFFFF {
            return lookup(ipv4: UInt32(truncatingIfNeeded: low))
        }
        return lookup(ipv6High: high, low: low)
    }

    /// Every routed prefix (masked) with its peer, IPv4 first, each family in address order
    /// with shorter prefixes first. For `vpnd show` and tests; allocates.
    public var entries: [(prefix: IPPrefix, peer: UInt32)] {
        var out: [(prefix: IPPrefix, peer: UInt32)] = []
        Self.collect(ipv4Nodes, index: 0, high: 0, low: 0, depth: 0, ipv4: true, into: &out)
        Self.collect(ipv6Nodes, index: 0, high: 0, low: 0, depth: 0, ipv4: false, into: &out)
        return out
    }

    // MARK: - Trie internals

    @inlinable
    static func walk(_ nodes: ContiguousArray<Node>, high: UInt64, low: UInt64, width: Int) -> UInt32? {
        var best: UInt32? = nil
        var index = 0
        var depth = 0
        while true {
            let node = nodes[index]
            if node.hasPeer { best = node.peer }
            if depth == width { return best }
            let bit = depth < 64 ? (high >> UInt64(63 - depth)) & 1 : (low >> UInt64(127 - depth)) & 1
            let next = bit == 0 ? node.zero : node.one
            if next == 0 { return best }
            index = Int(next)
            depth += 1
        }
    }

    /// The address left-aligned in 128 bits.
    static func key(_ address: IPAddress) -> (UInt64, UInt64) {
        switch address {
        case .v4(let value): return (UInt64(value) << 32, 0)
        case .v6(let high, let low): return (high, low)
        }
    }

    static func bit(_ high: UInt64, _ low: UInt64, at depth: Int) -> UInt64 {
        depth < 64 ? (high >> UInt64(63 - depth)) & 1 : (low >> UInt64(127 - depth)) & 1
    }

    static func insert(into nodes: inout ContiguousArray<Node>, high: UInt64, low: UInt64, length: Int, peer: UInt32) {
        var index = 0
        for depth in 0..<length {
            let goOne = bit(high, low, at: depth) == 1
            var next = goOne ? nodes[index].one : nodes[index].zero
            if next == 0 {
                precondition(nodes.count < Int(UInt32.max), "AllowedIPs trie is full")
                next = UInt32(nodes.count)
                nodes.append(Node())
                if goOne { nodes[index].one = next } else { nodes[index].zero = next }
            }
            index = Int(next)
        }
        nodes[index].peer = peer
        nodes[index].hasPeer = true
    }

    static func collect(
        _ nodes: ContiguousArray<Node>, index: Int, high: UInt64, low: UInt64, depth: Int, ipv4: Bool,
        into out: inout [(prefix: IPPrefix, peer: UInt32)]
    ) {
        let node = nodes[index]
        if node.hasPeer {
            let address: IPAddress = ipv4 ? .v4(UInt32(truncatingIfNeeded: high >> 32)) : .v6(high, low)
            out.append((IPPrefix(address: address, length: depth)!, node.peer))
        }
        func withBit(_ bit: UInt64) -> (UInt64, UInt64) {
            depth < 64 ? (high | bit << UInt64(63 - depth), low) : (high, low | bit << UInt64(127 - depth))
        }
        if node.zero != 0 {
            let (h, l) = withBit(0)
            collect(nodes, index: Int(node.zero), high: h, low: l, depth: depth + 1, ipv4: ipv4, into: &out)
        }
        if node.one != 0 {
            let (h, l) = withBit(1)
            collect(nodes, index: Int(node.one), high: h, low: l, depth: depth + 1, ipv4: ipv4, into: &out)
        }
    }
}

/// The last address one direction of the data path looked up, and the answer (nil included):
/// a flow's packets come in runs, and a repeated address skips the trie walk. The owner resets
/// it whenever the table changes.
public struct RouteMemo: Sendable {
    @usableFromInline var address: IPAddress?
    @usableFromInline var peer: UInt32?

    public init() {}

    /// The peer for `address` in `table`, from the memo when it is the previous address.
    @inlinable
    public mutating func lookup(_ address: IPAddress, in table: AllowedIPs) -> UInt32? {
        if let last = self.address, last == address { return peer }
        let found = table.lookup(address)
        self.address = address
        peer = found
        return found
    }

    /// Forgets the memo (the table changed).
    public mutating func reset() {
        address = nil
        peer = nil
    }
}
