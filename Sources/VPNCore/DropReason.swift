// SPDX-License-Identifier: MIT

/// Why the core refused a message or packet. A closed set, so the daemon can count each reason
/// (`vpnd show`) and log it rate-limited; the core itself never logs.
public enum DropReason: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    // Framing (any message)
    /// Shorter than the smallest message, or shorter than its type requires.
    case truncated
    /// Longer than its type allows.
    case oversized
    /// The type byte is not 1 to 4, or the three reserved bytes are not zero.
    case unknownType
    /// A TCP frame length of zero or above the maximum.
    case badFrameLength

    // Transport data (type 4)
    /// No session has this receiver index.
    case unknownReceiverIndex
    /// The counter was seen before or is older than the replay window.
    case replayed
    /// The counter is at or past REJECT_AFTER_MESSAGES.
    case counterLimit
    /// The Poly1305 tag did not verify.
    case authenticationFailed
    /// The session's key is older than REJECT_AFTER_TIME.
    case keyExpired
    /// The decrypted packet is not IPv4/IPv6 (tun) or its length field is inconsistent.
    case malformedInnerPacket
    /// The inner source address is outside the peer's AllowedIPs (cryptokey routing).
    case sourceNotAllowed

    // Handshake (types 1 to 3)
    /// mac1 did not verify: wrong responder public key, or not a handshake for us.
    case invalidMAC1
    /// Under load and mac2 is missing or wrong: answered with a cookie reply instead.
    case invalidMAC2
    /// The handshake did not decrypt or authenticate (wrong key, wrong PSK, wrong mode).
    case handshakeFailed
    /// The initiator's static key is not a configured peer.
    case unknownPeer
    /// The initiation's TAI64N timestamp is not newer than the last accepted one (a replay).
    case staleTimestamp
    /// Too many initiations from this source (rate limit).
    case rateLimited
    /// A response or cookie reply that matches no handshake in flight.
    case unexpectedHandshake
    /// A handshake message while the interface has no private key (vpnd-wg before `wg set
    /// private-key`).
    case noPrivateKey

    // Sending
    /// No peer's AllowedIPs cover the destination.
    case noRoute
    /// Waiting for a handshake and the staging queue is full.
    case queueFull
    /// The peer has no endpoint to send to yet.
    case noEndpoint
    /// The packet is larger than the tunnel's MTU allows.
    case packetTooBig

    // Offloads (virtio-net header, segmentation)
    /// A tun super-packet whose virtio-net header or IP/TCP/UDP headers are inconsistent or unsupported.
    case malformedOffload
    /// A tun super-packet splits into more segments than the caller's batch holds.
    case offloadBatchTooSmall

    public var description: String {
        switch self {
        case .truncated: return "truncated"
        case .oversized: return "oversized"
        case .unknownType: return "unknown-type"
        case .badFrameLength: return "bad-frame-length"
        case .unknownReceiverIndex: return "unknown-receiver-index"
        case .replayed: return "replayed"
        case .counterLimit: return "counter-limit"
        case .authenticationFailed: return "authentication-failed"
        case .keyExpired: return "key-expired"
        case .malformedInnerPacket: return "malformed-inner-packet"
        case .sourceNotAllowed: return "source-not-allowed"
        case .invalidMAC1: return "invalid-mac1"
        case .invalidMAC2: return "invalid-mac2"
        case .handshakeFailed: return "handshake-failed"
        case .unknownPeer: return "unknown-peer"
        case .staleTimestamp: return "stale-timestamp"
        case .rateLimited: return "rate-limited"
        case .unexpectedHandshake: return "unexpected-handshake"
        case .noPrivateKey: return "no-private-key"
        case .noRoute: return "no-route"
        case .queueFull: return "queue-full"
        case .noEndpoint: return "no-endpoint"
        case .packetTooBig: return "packet-too-big"
        case .malformedOffload: return "malformed-offload"
        case .offloadBatchTooSmall: return "offload-batch-too-small"
        }
    }
}
