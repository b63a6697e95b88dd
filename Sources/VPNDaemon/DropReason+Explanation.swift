// SPDX-License-Identifier: MIT
import VPNCore

/// What each drop means to whoever runs vpnd, and what to do about it: one sentence per reason,
/// for `vpnd doctor` (the core's doc comments on ``DropReason`` say the same for programmers).
extension DropReason {
    /// One line: what was dropped, the usual cause, and the fix when there is one.
    public var explanation: String {
        switch self {
        case .truncated:
            return "messages shorter than their type requires: something that is not vpnd or WireGuard sends to this port (a scanner, another protocol)"
        case .oversized:
            return "messages longer than their type allows: something that is not vpnd or WireGuard sends to this port"
        case .unknownType:
            return "messages with a type byte that is no vpnd or WireGuard message: something else sends to this port"
        case .badFrameLength:
            return "TCP frames with a length of zero or above the maximum: the other end of the connection does not speak vpnd over TCP (Transport must be tcp on both ends)"
        case .unknownReceiverIndex:
            return "data for a session this end no longer has (the peer outlived a restart or an expired session): harmless in small numbers, a new handshake follows"
        case .replayed:
            return "data messages seen before or older than the replay window: duplicates or heavy reordering on the path (or a replay); harmless, nothing is delivered twice"
        case .counterLimit:
            return "data messages past a session's message limit: the peer did not rekey in time"
        case .authenticationFailed:
            return "data messages whose authentication tag did not verify: corrupted on the way, or forged; nothing of them was delivered"
        case .keyExpired:
            return "data messages on a session key older than 180 s: the peer did not rekey in time; a new handshake follows"
        case .malformedInnerPacket:
            return "decrypted packets that are no valid IPv4/IPv6 packet: the peer sends broken packets"
        case .sourceNotAllowed:
            return "packets from the peer whose source address is outside the AllowedIPs this end has for it: widen AllowedIPs here, or fix the peer's addresses or routes"
        case .invalidMAC1:
            return "handshake messages whose mac1 did not verify: made for another public key than this end's (the sender's PublicKey for this end is wrong), or not meant for us"
        case .invalidMAC2:
            return "handshake messages without a valid cookie while this end was under load: answered with a cookie reply, which the sender's retry carries"
        case .handshakeFailed:
            return "handshake messages that did not decrypt or authenticate: different PresharedKeys on the two ends, a tun end against a tap end, or ends with different Ciphers"
        case .unknownPeer:
            return "handshake initiations from a public key that is no [Peer] here: a client missing from this end's config (vpnd doctor shows its key)"
        case .staleTimestamp:
            return "handshake initiations whose timestamp is not newer than the last one accepted from the same key: a replay, two clients sharing one key, or a clock that went back"
        case .rateLimited:
            return "handshake initiations over the per-source rate limit: a flood, or a peer that retries too fast"
        case .unexpectedHandshake:
            return "handshake responses or cookie replies that match no handshake in flight: late duplicates after a retry; harmless"
        case .noPrivateKey:
            return "handshake messages while the interface has no private key: set one (wg set NAME private-key FILE)"
        case .noRoute:
            return "packets from the interface to a destination that no peer's AllowedIPs covers: add the prefix to the right peer (a few IPv6 multicast packets right after start-up are normal)"
        case .queueFull:
            return "packets dropped because a queue was full (waiting for a handshake, or for the socket): a burst larger than the buffers"
        case .noEndpoint:
            return "packets for a peer whose address is not known yet: it has not connected (a server learns a client's address from its first handshake)"
        case .packetTooBig:
            return "packets larger than the MTU or the path towards the peer: answered with an ICMP \"too big\", so the sender sends smaller ones"
        case .malformedOffload:
            return "super-packets from the kernel whose headers are inconsistent: a kernel offload misbehaves; try --no-tun-offload"
        case .offloadBatchTooSmall:
            return "super-packets from the kernel that split into more segments than a batch holds: try --no-tun-offload"
        }
    }
}
