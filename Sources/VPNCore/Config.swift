// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// A parsed configuration: one `[Interface]` and its `[Peer]`s, as `docs/config.md` describes.
///
/// Built by ``parse(_:fileName:)`` from text (no file access: key files stay paths for the CLI to
/// read), adjusted by ``applying(_:)`` from command-line flags, and checked against the role
/// with ``validate(role:)``. A value; private keys inside are ``SecretKey``s and never print.
public struct Config: Equatable, Sendable {
    /// The file name used in error messages (as given to the parser).
    public var fileName: String
    /// The `[Interface]` section.
    public var interface: Interface
    /// The `[Peer]` sections in file order; a peer's id in ``routingTable()`` is its index here.
    public var peers: [Peer]

    /// The MTU when none is configured, for tun and tap alike: WireGuard's default.
    public static let defaultMTU = 1420
    /// The smallest accepted MTU (RFC 791's minimum datagram every IPv4 host must accept).
    public static let minimumMTU = 576
    /// The smallest MTU that carries IPv6 (RFC 8200, section 5).
    public static let minimumIPv6MTU = 1280
    /// The largest MTU that `Transport = tcp` carries (65,489): a frame's 2-byte length prefix
    /// allows 65,535 bytes, and the largest frame is a data message around a packet of MTU + 14
    /// bytes (the daemon leaves room for a tap frame's Ethernet header), so 16-byte header +
    /// MTU + 14 + 16-byte tag.
    public static let maximumTCPMTU = Spec.maximumTCPFrameLength - Spec.dataHeaderSize - Spec.tagSize - 14
    /// The interface name when none is configured.
    public static let defaultName = "vpnd0"
    /// The longest Linux interface name (IFNAMSIZ - 1).
    public static let maximumNameLength = 15

    public init(fileName: String, interface: Interface, peers: [Peer]) {
        self.fileName = fileName
        self.interface = interface
        self.peers = peers
    }

    /// The `[Interface]` section.
    public struct Interface: Equatable, Sendable {
        /// `PrivateKey` or `PrivateKeyFile`.
        public var privateKey: KeySource
        /// `Address` entries as written, host bits kept (`10.8.0.1/24`), in file order.
        public var addresses: [IPPrefix]
        /// `ListenPort`; nil lets the kernel pick (clients).
        public var listenPort: UInt16?
        /// `MTU`, default ``Config/defaultMTU``.
        public var mtu: Int
        /// `Mode`, default tun.
        public var mode: Mode
        /// `Transport`, default udp.
        public var transport: Transport
        /// `Name`, the Linux interface name, default ``Config/defaultName``.
        public var name: String
        /// `Bridge`: an existing Linux bridge to enslave the tap interface to (tap only).
        public var bridge: String?
        /// `User`: the user to drop privileges to after set-up (stored, not checked here).
        public var user: String?
        /// `MSSClamp`, default ``MSSClampSetting/auto``.
        public var mssClamp: MSSClampSetting
        /// `PathMTUDiscovery`, default on: over UDP, the DF bit on every datagram and probes to
        /// find each peer's path MTU (off: the kernel fragments, as before).
        public var pathMTUDiscovery: Bool
        /// `KeepNetAdmin`, default yes: with `User`, vpnd keeps CAP_NET_ADMIN (and nothing else)
        /// for the runtime changes that need it (`wg set`: routes, `fwmark`); no drops it too.
        public var keepNetAdmin: Bool
        /// `MetricsListen`: the address and port (`127.0.0.1:9586`, `[::1]:9586`) where the
        /// daemon serves its metrics over HTTP (`GET /metrics`); nil (the default): nowhere.
        public var metricsListen: Endpoint?
        /// wg-quick's host-side keys and vpnd's kill switch and forwarding (``HostSettings``).
        public var host = HostSettings()
        /// `Cipher`, default chacha20poly1305 (WireGuard's): the AEAD of transport data. Both
        /// ends must agree; `aes256gcm` is vpnd's own and needs a CPU with AES instructions.
        public var cipher: TransportCipher = .chaCha20Poly1305
        /// `Threads`: packet threads (1–64); nil (the default, `auto`): chosen from the CPU count
        /// at start.
        public var threads: Int? = nil

        public init(
            privateKey: KeySource, addresses: [IPPrefix] = [], listenPort: UInt16? = nil,
            mtu: Int = Config.defaultMTU, mode: Mode = .tun, transport: Transport = .udp,
            name: String = Config.defaultName, bridge: String? = nil, user: String? = nil,
            mssClamp: MSSClampSetting = .auto, pathMTUDiscovery: Bool = true, keepNetAdmin: Bool = true,
            metricsListen: Endpoint? = nil
        ) {
            self.metricsListen = metricsListen
            self.keepNetAdmin = keepNetAdmin
            self.mssClamp = mssClamp
            self.pathMTUDiscovery = pathMTUDiscovery
            self.privateKey = privateKey
            self.addresses = addresses
            self.listenPort = listenPort
            self.mtu = mtu
            self.mode = mode
            self.transport = transport
            self.name = name
            self.bridge = bridge
            self.user = user
        }
    }

    /// A `[Peer]` section.
    public struct Peer: Equatable, Sendable {
        /// `PublicKey`.
        public var publicKey: Bytes32
        /// `PresharedKey` or `PresharedKeyFile`; nil for none (the all-zero PSK).
        public var presharedKey: KeySource?
        /// `AllowedIPs`, masked (`10.8.0.7/24` becomes `10.8.0.0/24`), in file order. In tap mode
        /// they are accepted and not used.
        public var allowedIPs: [IPPrefix]
        /// `Endpoint`; nil until the peer's first authenticated packet tells where it is.
        public var endpoint: EndpointSpec?
        /// `PersistentKeepalive` in seconds; nil when off (absent, 0 or "off").
        public var persistentKeepalive: UInt16?
        /// The line of the `[Peer]` header, to name this peer in messages.
        public var line: Int
        /// The peer's name: the comment on its `[Peer]` line or the first comment line after it
        /// (`# alice`). Shown by `vpnd peer list`, `vpnd show` and the metrics' `name` label.
        public var name: String?

        public init(
            publicKey: Bytes32, presharedKey: KeySource? = nil, allowedIPs: [IPPrefix] = [],
            endpoint: EndpointSpec? = nil, persistentKeepalive: UInt16? = nil, line: Int = 0, name: String? = nil
        ) {
            self.name = name
            self.publicKey = publicKey
            self.presharedKey = presharedKey
            self.allowedIPs = allowedIPs
            self.endpoint = endpoint
            self.persistentKeepalive = persistentKeepalive
            self.line = line
        }
    }

    /// A key given inline (base64 in the file) or as the path of a file holding it.
    public enum KeySource: Equatable, Sendable, CustomStringConvertible {
        /// The decoded key.
        case key(SecretKey)
        /// The path as written; the CLI resolves a relative path and reads the file.
        case file(String)

        /// Keys compare in constant time.
        public static func == (lhs: KeySource, rhs: KeySource) -> Bool {
            switch (lhs, rhs) {
            case (.key(let a), .key(let b)): return a.constantTimeEquals(b)
            case (.file(let a), .file(let b)): return a == b
            default: return false
            }
        }

        /// `<redacted>` for a key, the path for a file.
        public var description: String {
            switch self {
            case .key: return "<redacted>"
            case .file(let path): return "file \(path)"
            }
        }
    }

    /// `Mode`: what the virtual interface carries.
    /// How the MSS of TCP connections through the tunnel is clamped (`MSSClamp`).
    public typealias MSSClampSetting = VPNCore.MSSClampSetting

    public enum Mode: String, CaseIterable, Sendable {
        /// IP packets (layer 3), routed by AllowedIPs; WireGuard-compatible over UDP.
        case tun
        /// Ethernet frames (layer 2) to exactly one peer; vpnd's own extension.
        case tap
    }

    /// `Transport`: how sealed messages travel.
    public enum Transport: String, CaseIterable, Sendable {
        /// One message per datagram, as WireGuard does.
        case udp
        /// A length-prefixed stream; vpnd's own extension for networks that block UDP.
        case tcp
        /// Both, on one port (`udp,tcp` says the same): a server answers either; a client starts
        /// on UDP and moves its session to TCP and back as the network allows, without a new
        /// handshake (docs/protocol.md, "Transport agility").
        case auto

        /// Whether UDP carries messages (udp, auto).
        public var carriesUDP: Bool { self != .tcp }
        /// Whether TCP carries messages (tcp, auto).
        public var carriesTCP: Bool { self != .udp }
    }

    /// What `vpnd` was asked to be.
    public enum Role: String, Sendable {
        /// `vpnd --server`: listens on ListenPort.
        case server
        /// `vpnd --client`: connects to its peer's Endpoint.
        case client
    }

    /// The AllowedIPs of every peer as one routing table; a peer's id is its index in ``peers``.
    ///
    /// Empty in tap mode, where the single peer takes every frame.
    public func routingTable() -> AllowedIPs {
        var table = AllowedIPs()
        guard interface.mode == .tun else { return table }
        for (index, peer) in peers.enumerated() {
            for prefix in peer.allowedIPs { table.insert(prefix, peer: UInt32(index)) }
        }
        return table
    }

    /// Checks what the role needs: a server needs ListenPort; a client needs a peer with an Endpoint.
    ///
    /// - Throws: ``ConfigError`` naming the missing key and the flag that can supply it.
    public func validate(role: Role) throws(ConfigError) {
        switch role {
        case .server:
            guard interface.listenPort != nil else {
                throw ConfigError(
                    fileName: fileName, line: 0,
                    message: "vpnd --server needs ListenPort in [Interface] (or --listen-port PORT)")
            }
        case .client:
            guard peers.contains(where: { $0.endpoint != nil }) else {
                throw ConfigError(
                    fileName: fileName, line: 0,
                    message: "vpnd --client needs a [Peer] with an Endpoint (or --endpoint HOST:PORT)")
            }
        }
    }
}
