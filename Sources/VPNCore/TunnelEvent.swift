// SPDX-License-Identifier: MIT
import VPNBasics

/// Something that happened in the core that its owner may want to know: the daemon turns each
/// into a log line (and remembers endpoints); the core itself never logs. Peers are named by
/// their public key.
public enum TunnelEvent: Sendable, Equatable {
    /// An initiation to `peer` was asked for (a retry when the previous one went unanswered).
    case initiationStarted(peer: Bytes32, isRetry: Bool)
    /// The first retry towards a configured peer that never answered: no valid response after
    /// `waited` (a wrong PublicKey fails mac1 there and is dropped without a word).
    case noResponseYet(peer: Bytes32, waited: Duration)
    /// An initiation to `peer` could not be written: its public key is of low order.
    case initiationImpossible(peer: Bytes32, HandshakeError)
    /// An initiation from `source` did not decrypt: a wrong key, or a peer in the other Mode.
    case initiationNotDecrypted(source: Endpoint)
    /// An initiation from `source` came from `publicKey`, which is no peer of ours.
    case initiationFromUnknownKey(publicKey: Bytes32, source: Endpoint)
    /// A response from `source` to our initiation to `peer` did not authenticate.
    case responseNotAuthenticated(peer: Bytes32, source: Endpoint)
    /// We answered `peer`'s initiation from `source` (the session waits for its confirmation).
    case initiationAnswered(peer: Bytes32, source: Endpoint)
    /// A session with `peer` is established: `weInitiated` when its response arrived, else on the
    /// initiator's first message; `firstSession` when none came before.
    case handshakeCompleted(peer: Bytes32, weInitiated: Bool, firstSession: Bool)
    /// `peer` sent a cookie reply: it is under load; the next initiation carries mac2.
    case cookieReceived(peer: Bytes32)
    /// `peer`'s endpoint is now `endpoint` (`previous` nil: the first one known).
    case endpointChanged(peer: Bytes32, previous: Endpoint?, endpoint: Endpoint)
    /// No handshake answer from `peer` for REKEY_ATTEMPT_TIME (`after`); the staged packets went.
    /// `configuredEndpoint` tells a peer we dial (likely a mistake) from a remembered client
    /// that went offline.
    case handshakeGaveUp(peer: Bytes32, after: Duration, configuredEndpoint: Bool)
    /// The path to `peer` at `endpoint` carries datagrams of at most `outerMTU` bytes: inner
    /// packets of at most `innerMTU` go there now.
    case pathNarrowed(peer: Bytes32, endpoint: Endpoint, outerMTU: Int, innerMTU: Int)
    /// Large packets to `peer` go unanswered while small ones get through, and the peer does not
    /// echo path probes: a black hole is assumed, inner packets of at most `innerMTU` go there.
    case blackHoleAssumed(peer: Bytes32, innerMTU: Int)
    /// `Transport = auto`: the session with `peer` moved to `carrier`, for this reason.
    case carrierChanged(peer: Bytes32, carrier: Carrier, endpoint: Endpoint, reason: CarrierChange)
    /// A TCP connection to `peer` was made again: the session goes on over it (`kept`), or,
    /// when nothing authenticated came back within the check, a new handshake starts (`!kept`).
    case reconnected(peer: Bytes32, kept: Bool)
}

/// Why a `Transport = auto` client moved its session.
public enum CarrierChange: Sendable, Equatable {
    /// No handshake answer over the other carrier within the wait.
    case handshakeUnanswered(Duration)
    /// Nothing authenticated came back over UDP for this long while we sent, probes included.
    case udpSilent(Duration)
    /// UDP answered every probe for this long.
    case udpAnswering(Duration)
    /// Nothing authenticated came over TCP for this long after the move there (TCP blocked too).
    case tcpUnanswered(Duration)
}
