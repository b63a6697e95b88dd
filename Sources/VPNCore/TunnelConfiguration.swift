// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// What the core needs to run a tunnel: our identity, the peers, the MTU and the timer limits.
/// Built by the CLI layer from a parsed config file; no file names, no sockets.
public struct TunnelConfiguration: Sendable {
    /// tun (IP packets, WireGuard-compatible) or tap (Ethernet frames, vpnd's own identifier).
    public var mode: HandshakeIdentity.Mode
    /// Our static private key.
    public var privateKey: SecretKey
    /// False for an interface that has no private key yet (vpnd-wg, as wireguard-go starts):
    /// `privateKey` is then a placeholder that no handshake uses, and the interface neither
    /// initiates nor answers until a `set` gives it one.
    public var hasPrivateKey = true
    /// The tunnel MTU: the largest inner packet (tun) or Ethernet payload (tap).
    public var mtu: Int
    /// The peers; tap mode has exactly one.
    public var peers: [PeerConfiguration]
    /// WireGuard's timer limits; shortened only in tests.
    public var timers: TimerSettings
    /// The AEAD of transport data: ChaCha20-Poly1305 (WireGuard's) unless both ends of a vpnd
    /// tunnel set `Cipher = aes256gcm`. Bound into the handshake's identifier.
    public var cipher: TransportCipher = .chaCha20Poly1305
    /// Packets waiting for a handshake, per peer.
    public var stagedPacketsPerPeer: Int
    /// Whether each peer's path MTU is searched with probes (over UDP; a TCP stream needs none).
    public var pathMTUDiscovery: Bool
    /// How the MSS of TCP SYNs crossing the tunnel is clamped.
    public var mssClamp: MSSClampSetting
    /// What carries the messages: one carrier, both (a `Transport = auto` server), or both with
    /// the client choosing (a `Transport = auto` client: ``CarrierSelector`` per peer).
    public var carriers: CarrierUse = .one
    /// The client's carrier choice (tests shorten it).
    public var carrierSettings = CarrierSelector.Settings()
    /// With `.agile`: the peer whose carrier this end chooses (the one its TCP side dials); nil:
    /// every peer with a configured endpoint (one, in practice). Other peers stay on UDP.
    public var carrierPeer: Bytes32? = nil

    /// The timer limits a peer runs with: ``timers`` with the message limits lowered to the
    /// cipher's (AES-256-GCM rekeys far sooner than 2^60 messages).
    var peerTimers: TimerSettings { timers.limited(to: cipher) }

    /// The carrier choice for a peer configured as `peer`, or nil when it has none.
    func carrierSettings(for peer: PeerConfiguration) -> CarrierSelector.Settings? {
        guard carriers == .agile, peer.endpoint != nil, carrierPeer.map({ $0 == peer.publicKey }) ?? true else { return nil }
        return carrierSettings
    }

    public init(
        mode: HandshakeIdentity.Mode, privateKey: SecretKey, mtu: Int, peers: [PeerConfiguration],
        timers: TimerSettings = .wireGuard, stagedPacketsPerPeer: Int = Tuning.stagedPacketsPerPeer,
        pathMTUDiscovery: Bool = false, mssClamp: MSSClampSetting = .auto
    ) {
        self.pathMTUDiscovery = pathMTUDiscovery
        self.mssClamp = mssClamp
        self.mode = mode
        self.privateKey = privateKey
        self.mtu = mtu
        self.peers = peers
        self.timers = timers
        self.stagedPacketsPerPeer = stagedPacketsPerPeer
    }

    /// Whether data messages are zero-padded to 16 bytes. tun pads as WireGuard does (the IP
    /// header tells the receiver the real length); tap does not, since an Ethernet frame does
    /// not carry its own length.
    public var pads: Bool { mode == .tun }
}

/// What carries a tunnel's messages (`Transport`).
public enum CarrierUse: Sendable, Equatable {
    /// One carrier (`udp` or `tcp`): endpoints are never tagged.
    case one
    /// UDP and TCP (a `Transport = auto` server): a peer's endpoint is a UDP address or a TCP
    /// connection, and follows the latest authenticated data or keepalive, whichever carried it.
    case both
    /// UDP and TCP, chosen by this end for each peer it dials (a `Transport = auto` client).
    case agile
}

/// `MSSClamp`: TCP SYNs and SYN-ACKs crossing the tunnel (both ways) carry at most this MSS.
public enum MSSClampSetting: Equatable, Sendable {
    /// What fits the peer's path: its path MTU less 40 (IPv4) or 60 (IPv6) bytes of headers.
    case auto
    /// Never touch a segment.
    case off
    /// At most this MSS (and at most what `auto` gives).
    case fixed(Int)
}

public struct PeerConfiguration: Sendable {
    /// The peer's static public key.
    public var publicKey: Bytes32
    /// The optional pre-shared key (psk2).
    public var presharedKey: SecretKey?
    /// Inner addresses this peer may send from and that are routed to it (tun mode).
    public var allowedIPs: [IPPrefix]
    /// Where to send before the peer has talked to us; nil for a peer that must call in.
    public var endpoint: Endpoint?
    /// PersistentKeepalive interval, zero for off.
    public var persistentKeepalive: Duration
    /// Where the peer was last heard from by an earlier run of this interface (the daemon keeps
    /// it across restarts), used when ``endpoint`` is nil: a restarted server re-establishes
    /// sessions with its clients at once instead of waiting for them to notice.
    public var rememberedEndpoint: Endpoint?

    public init(
        publicKey: Bytes32, presharedKey: SecretKey? = nil, allowedIPs: [IPPrefix] = [], endpoint: Endpoint? = nil,
        persistentKeepalive: Duration = .zero, rememberedEndpoint: Endpoint? = nil
    ) {
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.allowedIPs = allowedIPs
        self.endpoint = endpoint
        self.persistentKeepalive = persistentKeepalive
        self.rememberedEndpoint = rememberedEndpoint
    }
}

/// A source of wall-clock time for TAI64N timestamps in handshake initiations. The core reads
/// no clock: the daemon supplies the real one, tests a fixed or stepping one.
public protocol TimestampSource {
    /// The current wall-clock time.
    mutating func timestamp() -> TAI64N
}

/// A snapshot of a tunnel for `vpnd show`. Made on request, off the per-packet path.
public struct TunnelStatus: Sendable {
    /// Our public key.
    public var publicKey: Bytes32
    /// When the snapshot was taken (same clock as the `Instant`s below).
    public var now: Instant
    /// tun or tap.
    public var mode: HandshakeIdentity.Mode
    /// Drops that belong to no peer, by reason.
    public var drops: [DropReason: UInt64]
    /// Per peer.
    public var peers: [PeerStatus]
    /// The TCP transport's connection counters; nil over UDP. The data plane fills it in.
    public var tcp: TCPConnectionStatus? = nil
    /// Our private key (for the UAPI's `get`, never printed by `vpnd show`).
    public var privateKey: SecretKey? = nil
    /// The tunnel MTU (the largest inner packet, or Ethernet payload in tap mode).
    public var mtu: Int = 0
    /// The last few distinct static keys whose initiations decrypted but belong to no peer
    /// (counted as `unknown-peer`), most recent first: clients missing from this end's config.
    public var unknownInitiators: [UnknownInitiator] = []
}

/// The TCP transport's connections for `vpnd show`: how many are open and how the server's
/// admission rules treated new ones (a server fills the admission counters, a client `connects`).
public struct TCPConnectionStatus: Sendable, Equatable {
    /// Connections open now.
    public var open: Int
    /// Of those, the ones that delivered an authenticated message.
    public var authenticated: Int
    /// Connections accepted (server) since start-up.
    public var accepted: UInt64
    /// Unauthenticated connections closed to make room for a new one (the table was full).
    public var evicted: UInt64
    /// Unauthenticated connections closed because their deadline passed.
    public var expired: UInt64
    /// New connections closed at once because every slot held an authenticated connection.
    public var refusedFull: UInt64
    /// New connections closed at once because their source address had its cap of
    /// unauthenticated connections.
    public var refusedSourceCap: UInt64
    /// Connections established by dialling (client) since start-up: 1 means never redialled.
    public var connects: UInt64

    public init(
        open: Int = 0, authenticated: Int = 0, accepted: UInt64 = 0, evicted: UInt64 = 0, expired: UInt64 = 0,
        refusedFull: UInt64 = 0, refusedSourceCap: UInt64 = 0, connects: UInt64 = 0
    ) {
        self.open = open
        self.authenticated = authenticated
        self.accepted = accepted
        self.evicted = evicted
        self.expired = expired
        self.refusedFull = refusedFull
        self.refusedSourceCap = refusedSourceCap
        self.connects = connects
    }
}

/// One peer's line in `vpnd show`.
public struct PeerStatus: Sendable {
    public var publicKey: Bytes32
    public var endpoint: Endpoint?
    public var allowedIPs: [IPPrefix]
    /// When the latest handshake completed.
    public var latestHandshake: Instant?
    public var receivedBytes: UInt64
    public var receivedPackets: UInt64
    public var sentBytes: UInt64
    public var sentPackets: UInt64
    public var persistentKeepalive: Duration
    /// Drops attributed to this peer, by reason.
    public var drops: [DropReason: UInt64]
    /// True when a session key is usable right now.
    public var hasSession: Bool
    /// The inner packet size usable towards the peer now: the MTU, or less once path MTU
    /// discovery found a smaller path.
    public var pathMTU: Int = 0
    /// Whether the peer echoes vpnd's path probes (nil: not known yet, or discovery is off).
    public var echoesProbes: Bool? = nil
    /// Sessions established with the peer since start (either side initiating).
    public var handshakes: UInt64 = 0
    /// Cookie replies the peer sent us (it was under load when we initiated).
    public var cookieRepliesReceived: UInt64 = 0
    /// Whether the peer's Endpoint is configured (we dial it), rather than learnt from its
    /// messages or remembered from an earlier run.
    public var endpointConfigured: Bool = false
    /// Handshake initiations we sent the peer (retries included).
    public var initiationsSent: UInt64 = 0
    /// Responses from the peer that authenticated and completed one of our initiations (the
    /// sessions established as initiator; the rest of ``handshakes`` the peer initiated).
    public var responsesReceived: UInt64 = 0
    /// Our initiations that went unanswered: each one still waiting for its response when the retry
    /// timer fired (REKEY_TIMEOUT, 5 s plus jitter, after it) or when the round was given up
    /// (REKEY_ATTEMPT_TIME, 90 s).
    public var initiationsUnanswered: UInt64 = 0
    /// Of ``initiationsUnanswered``, those since the latest response that authenticated (since start
    /// when none came): zero again once the peer answers.
    public var initiationsUnansweredInARow: UInt64 = 0
    /// Initiations from the peer that authenticated and that we answered with a response; the
    /// session starts when the peer's first data message confirms it.
    public var initiationsAnswered: UInt64 = 0
    /// The pre-shared key (for the UAPI's `get`, never printed by `vpnd show`).
    public var presharedKey: SecretKey? = nil
    /// The carrier of the endpoint (nil where the tunnel has one carrier).
    public var carrier: Carrier? = nil
    /// Moves between UDP and TCP since start (nil unless this end chooses: a `Transport = auto` client).
    public var carrierSwitches: UInt64? = nil
}
