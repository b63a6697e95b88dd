// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// What a `get=1` answer says about the interface (wireguard.com/xplatform): the caller fills it
/// from the running configuration and the tunnel's status, with wall-clock handshake times.
public struct UAPIDevice: Sendable {
    public struct Peer: Sendable {
        public var publicKey: Bytes32
        public var presharedKey: SecretKey?
        public var endpoint: Endpoint?
        /// The latest handshake as Unix time (seconds, nanoseconds); nil: none yet.
        public var lastHandshake: (seconds: Int64, nanoseconds: Int64)?
        public var receivedBytes: UInt64
        public var sentBytes: UInt64
        public var persistentKeepalive: UInt16
        public var allowedIPs: [IPPrefix]

        public init(
            publicKey: Bytes32, presharedKey: SecretKey?, endpoint: Endpoint?, lastHandshake: (seconds: Int64, nanoseconds: Int64)?,
            receivedBytes: UInt64, sentBytes: UInt64, persistentKeepalive: UInt16, allowedIPs: [IPPrefix]
        ) {
            self.publicKey = publicKey
            self.presharedKey = presharedKey
            self.endpoint = endpoint
            self.lastHandshake = lastHandshake
            self.receivedBytes = receivedBytes
            self.sentBytes = sentBytes
            self.persistentKeepalive = persistentKeepalive
            self.allowedIPs = allowedIPs
        }
    }

    public var privateKey: SecretKey?
    public var listenPort: UInt16?
    public var fwmark: UInt32
    public var peers: [Peer]

    public init(privateKey: SecretKey?, listenPort: UInt16?, fwmark: UInt32, peers: [Peer]) {
        self.privateKey = privateKey
        self.listenPort = listenPort
        self.fwmark = fwmark
        self.peers = peers
    }

    /// The answer to `get=1`, in wireguard-go's key order, ending with `errno=0` and the blank line.
    public var getResponse: String {
        var out = ""
        func line(_ key: String, _ value: String) {
            out += key
            out += "="
            out += value
            out += "\n"
        }
        if let privateKey { line("private_key", privateKey.withUnsafeBytes { Hex.encode($0) }) }
        if let listenPort, listenPort != 0 { line("listen_port", String(listenPort)) }
        if fwmark != 0 { line("fwmark", String(fwmark)) }
        for peer in peers {
            line("public_key", Hex.encode(peer.publicKey.array))
            line("preshared_key", peer.presharedKey.map { $0.withUnsafeBytes { Hex.encode($0) } } ?? String(repeating: "0", count: 64))
            line("protocol_version", "1")
            if let endpoint = peer.endpoint { line("endpoint", endpoint.description) }
            line("last_handshake_time_sec", String(peer.lastHandshake?.seconds ?? 0))
            line("last_handshake_time_nsec", String(peer.lastHandshake?.nanoseconds ?? 0))
            line("tx_bytes", String(peer.sentBytes))
            line("rx_bytes", String(peer.receivedBytes))
            line("persistent_keepalive_interval", String(peer.persistentKeepalive))
            for prefix in peer.allowedIPs { line("allowed_ip", prefix.description) }
        }
        out += "errno=0\n\n"
        return out
    }
}
