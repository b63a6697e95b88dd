// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

// The handshake's Diffie-Hellman work, cut out of the Tunnel so that it can run on another
// thread (DESIGN.md, Data path: "an X25519 operation never stalls a packet").
//
//   packet thread (Tunnel)                       handshake thread (HandshakeProcessor)
//   ---------------------                        -------------------------------------
//   admission: mac1, cookie, rate limit (cheap)
//   HandshakeJob, returned by takeHandshakeJobs  process: X25519, Noise, the responder's
//     (the daemon carries it over) ------------>  replay state (TAI64N, flood guard)
//   completeHandshake(outcome) <----------------- HandshakeOutcome
//   local index, mac1/mac2 (peer's cookie jar),
//   keypair slots, timers, outbox
//
// The sender index and the MACs are not part of the Noise transcript, so the processor writes
// messages with a zero sender index and no MACs; the packet thread, which owns the index table
// and the cookie jars, writes the index and stamps the MACs, once, when it applies the outcome.
// The core never calls out: jobs wait in the Tunnel until the daemon takes them. In the inline
// mode (tests, fuzzing) the Tunnel runs the processor itself, at once, through exactly the same
// job and outcome values.

/// A handshake message copied out of a receive buffer (at most 148 bytes).
public struct HandshakeMessage: Sendable {
    /// The message's bytes.
    public private(set) var bytes: [UInt8]

    /// A copy of `message`.
    public init(_ message: UnsafeRawBufferPointer) {
        bytes = Array(message)
    }

    init(count: Int) {
        bytes = [UInt8](repeating: 0, count: count)
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes(body)
    }

    mutating func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = bytes.withUnsafeMutableBytes { raw in
            do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}

/// One piece of handshake work, from the packet thread to the ``HandshakeProcessor``.
public struct HandshakeJob: Sendable {
    /// What to compute.
    public enum Work: Sendable {
        /// Write an initiation to a configured peer, carrying `timestamp`.
        case initiate(PeerHandshakeInfo, timestamp: TAI64N)
        /// Consume an initiation that passed admission (mac1; mac2 and rate limit under load) and
        /// answer it.
        case respond(HandshakeMessage)
        /// Consume a response to our initiation `pending`, which passed admission.
        case complete(HandshakeMessage, pending: PendingInitiation)
        /// The interface's configuration changed (``Tunnel/apply(_:now:)``): take our new identity
        /// and the peers' new keys before the jobs that follow.
        case reconfigure(HandshakeDirectoryChange)
    }

    /// What to compute.
    public let work: Work
    /// The peer number in the Tunnel (``OutgoingFrame/noPeer`` for `.respond`: the peer is
    /// unknown until its static key decrypts).
    public let peer: UInt32
    /// For `.initiate` and `.complete`: the peer's initiation ticket when the job was made
    /// (unique in the Tunnel); an outcome whose ticket is no longer the peer's (a newer
    /// initiation, a give-up, a peer removed and its number reused) is thrown away. For
    /// `.respond`: the identity generation, so a response computed with a private key replaced
    /// since is thrown away.
    public let ticket: UInt64
    /// Where the message came from (`.respond`, `.complete`), or where the initiation goes.
    public let source: Endpoint
    /// When the packet thread made the job.
    public let submittedAt: Instant

    public init(work: Work, peer: UInt32, ticket: UInt64, source: Endpoint, submittedAt: Instant) {
        self.work = work
        self.peer = peer
        self.ticket = ticket
        self.source = source
        self.submittedAt = submittedAt
    }
}

/// The result of a ``HandshakeJob``, from the ``HandshakeProcessor`` back to the packet thread.
public struct HandshakeOutcome: Sendable {
    /// What came out.
    public enum Result: Sendable {
        /// An initiation (sender index zero, MACs unset) and the state that awaits its response.
        case initiation(HandshakeMessage, PendingInitiation)
        /// A response (sender index zero, MACs unset) to an authenticated initiation, and the
        /// session's keys (local index zero; the initiator is their `remoteStatic`).
        case response(HandshakeMessage, SessionKeys)
        /// The response to our initiation authenticated: the session's keys.
        case completed(SessionKeys)
        /// An initiation could not be written: the peer's public key is of low order.
        case invalidPeerKey(HandshakeError)
        /// The message was refused, for this reason; nothing changed.
        case refused(DropReason)
        /// An initiation decrypted as far as its sender's static public key, and that key is no
        /// configured peer (an `unknownPeer` refusal that says who it was); nothing changed.
        case unknownInitiator(Bytes32)
        /// A `.reconfigure` job was taken in.
        case reconfigured
    }

    /// The job this answers.
    public let job: HandshakeJob
    /// What came out.
    public let result: Result
}

/// Does the Diffie-Hellman half of WireGuard's handshake for one interface: writes initiations,
/// consumes initiations and writes responses, consumes responses. Owns the responder's replay
/// state (each peer's greatest accepted TAI64N and the flood guard), so one processor must see
/// every initiation of an interface, in arrival order.
///
/// Not thread-safe; owned by one thread (the handshake thread, or the Tunnel in inline mode).
public struct HandshakeProcessor {
    /// Our identity.
    public private(set) var identity: HandshakeIdentity
    private var peers: [Bytes32: PeerHandshakeInfo]

    /// A processor for `identity` and its configured peers.
    public init(identity: HandshakeIdentity, peers: [PeerHandshakeInfo]) {
        self.identity = identity
        self.peers = Dictionary(peers.map { ($0.publicKey, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Does `job`'s work. Uses `entropy` for ephemeral keys (32 bytes per message written).
    public mutating func process(_ job: HandshakeJob, entropy: inout some EntropySource) -> HandshakeOutcome {
        HandshakeOutcome(job: job, result: result(of: job, entropy: &entropy))
    }

    private mutating func result(of job: HandshakeJob, entropy: inout some EntropySource) -> HandshakeOutcome.Result {
        switch job.work {
        case .initiate(let info, let timestamp):
            var message = HandshakeMessage(count: Spec.initiationSize)
            do throws(HandshakeError) {
                let pending = try message.withUnsafeMutableBytes { (bytes) throws(HandshakeError) in
                    try identity.writeInitiation(
                        peer: info, localIndex: 0, timestamp: timestamp, now: job.submittedAt, entropy: &entropy,
                        into: bytes)
                }
                return .initiation(message, pending)
            } catch {
                return .invalidPeerKey(error)
            }

        case .respond(let initiation):
            let consumed: ConsumedInitiation
            var claimed: Bytes32? = nil
            switch initiation.withUnsafeBytes({ bytes in
                identity.consumeInitiation(bytes, now: job.submittedAt, lookupPeer: { key in
                    claimed = key
                    return peers[key]
                })
            }) {
            case .accepted(let value): consumed = value
            case .drop(.unknownPeer) where claimed != nil: return .unknownInitiator(claimed!)
            case .drop(let reason): return .refused(reason)
            }
            // Authenticated: only now may the initiation change the replay state.
            peers[consumed.peerPublicKey]?.lastTimestamp = consumed.timestamp
            peers[consumed.peerPublicKey]?.lastInitiationAt = job.submittedAt
            var message = HandshakeMessage(count: Spec.responseSize)
            let keys = message.withUnsafeMutableBytes { bytes in
                identity.writeResponse(to: consumed, localIndex: 0, entropy: &entropy, into: bytes)
            }
            switch keys {
            case .accepted(let keys): return .response(message, keys)
            case .drop(let reason): return .refused(reason)
            }

        case .complete(let response, let pending):
            switch response.withUnsafeBytes({ identity.consumeResponse($0, pending: pending) }) {
            case .accepted(let keys): return .completed(keys)
            case .drop(let reason): return .refused(reason)
            }

        case .reconfigure(let change):
            apply(change)
            return .reconfigured
        }
    }

    /// Takes in a configuration change: a peer that stays keeps its replay state.
    mutating func apply(_ change: HandshakeDirectoryChange) {
        if let identity = change.identity { self.identity = identity }
        for key in change.removed { peers[key] = nil }
        for info in change.updated {
            if peers[info.publicKey] != nil {
                peers[info.publicKey]!.presharedKey = info.presharedKey
            } else {
                peers[info.publicKey] = info
            }
        }
    }
}

/// What the handshake processor must learn of a configuration change, in order with the jobs.
public struct HandshakeDirectoryChange: Sendable {
    /// Our new identity (a new private key), or nil.
    public var identity: HandshakeIdentity?
    /// Peers that went.
    public var removed: [Bytes32] = []
    /// Peers added, or whose pre-shared key changed.
    public var updated: [PeerHandshakeInfo] = []

    public var isEmpty: Bool { identity == nil && removed.isEmpty && updated.isEmpty }
}

@available(*, unavailable)
extension HandshakeProcessor: Sendable {}

/// Where the Tunnel's handshake work runs.
public enum HandshakeExecution: Sendable {
    /// On the caller's thread, at once (tests, fuzzing, the simulator).
    case inline
    /// On another thread: the jobs wait in the Tunnel until the owner takes them
    /// (``Tunnel/takeHandshakeJobs()``) and computes them with the processor from
    /// ``Tunnel/makeHandshakeProcessor()``; the outcomes come back through
    /// ``Tunnel/completeHandshake(_:now:)``. At most `capacity` jobs are in flight (made and not
    /// yet answered); one beyond is refused as `queue-full`. From
    /// ``Tunnel/underLoadBacklog`` in flight on, the interface is under load.
    case deferred(capacity: Int)

    /// Four times wireguard-go's handshake queue (1024): the second wave of a 10,000-client
    /// storm (every client retrying with its cookie, within about 2 s) waits here instead of
    /// being dropped as `queue-full` and retried 5 s later (docs/performance.md). Its rings cost
    /// about 3 MiB of resident memory.
    public static let defaultCapacity = 4096
}

extension SessionKeys {
    /// The same keys with our index set (the processor leaves it zero).
    func withLocalIndex(_ index: UInt32) -> SessionKeys {
        SessionKeys(
            sendKey: sendKey, receiveKey: receiveKey, localIndex: index, remoteIndex: remoteIndex,
            isInitiator: isInitiator, remoteStatic: remoteStatic)
    }
}
