// SPDX-License-Identifier: MIT
import VPNCrypto

/// WireGuard protocol constants, each citing the section of the WireGuard whitepaper
/// (J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel") that defines it,
/// plus the few constants of vpnd's own additions (TCP framing), marked as such.
///
/// Values here are facts of the protocol and never change at run time; tunable sizes such as
/// queue depths live in ``Tuning``.
public enum Spec {
    // MARK: Message types (whitepaper 5.4.2, 5.4.3, 5.4.6, 5.4.7)

    /// Type byte of a handshake initiation (whitepaper 5.4.2).
    public static let messageTypeInitiation: UInt8 = 1
    /// Type byte of a handshake response (whitepaper 5.4.3).
    public static let messageTypeResponse: UInt8 = 2
    /// Type byte of a cookie reply (whitepaper 5.4.7).
    public static let messageTypeCookieReply: UInt8 = 3
    /// Type byte of a transport data message (whitepaper 5.4.6).
    public static let messageTypeTransportData: UInt8 = 4

    // MARK: Message sizes (whitepaper 5.4)

    /// Bytes in the common message prefix: the type byte and three reserved zero bytes (whitepaper 5.4.2).
    public static let messagePrefixSize = 4
    /// Size of a handshake initiation in bytes (whitepaper 5.4.2).
    public static let initiationSize = 148
    /// Size of a handshake response in bytes (whitepaper 5.4.3).
    public static let responseSize = 92
    /// Size of a cookie reply in bytes (whitepaper 5.4.7).
    public static let cookieReplySize = 64
    /// Size of the Poly1305 authentication tag in bytes (whitepaper 5.4, AEAD of RFC 7539).
    public static let tagSize = 16
    /// Size of a transport data header: type, reserved, receiver index, counter (whitepaper 5.4.6).
    public static let dataHeaderSize = 16
    /// Size of the smallest transport data message, a keepalive: header + tag (whitepaper 5.4.6, 6.5).
    public static let dataMinimumSize = dataHeaderSize + tagSize
    /// Largest inner packet vpnd seals: the largest IPv4 total length; also the largest MTU vpnd accepts.
    /// WireGuard bounds it only by the MTU (whitepaper 5.4.6); this is vpnd's bound.
    public static let maximumInnerPacketSize = 65535
    /// Largest transport data message vpnd accepts: header + largest (padded) packet + tag.
    /// Padding never exceeds the MTU (whitepaper 5.4.6), so the padded packet fits in ``maximumInnerPacketSize``.
    public static let dataMaximumSize = dataHeaderSize + maximumInnerPacketSize + tagSize
    /// Plaintext of a transport data message is zero-padded to a multiple of this (whitepaper 5.4.6).
    public static let paddingMultiple = 16

    // MARK: Limits and timers (whitepaper 6.1, table of constants)

    /// After this many messages sent under one key, the sender initiates a new handshake
    /// (`Rekey-After-Messages`, 2^60; whitepaper 6.1, 6.2).
    public static let rekeyAfterMessages: UInt64 = 1 << 60
    /// A key never sends or accepts a counter at or past this value
    /// (`Reject-After-Messages`, 2^64 − 2^13 − 1; whitepaper 6.1, 6.2).
    public static let rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
    /// With `Cipher = aes256gcm`, the sender initiates a new handshake after this many messages
    /// under one key (2^23): half of ``aesGCMRejectAfterMessages``, as WireGuard rekeys far
    /// ahead of its hard limit.
    public static let aesGCMRekeyAfterMessages: UInt64 = 1 << 23
    /// With `Cipher = aes256gcm`, a key never sends or accepts a counter at or past this (2^24).
    /// GCM's confidentiality bound grows with the square of the blocks sealed under one key:
    /// (σ + q + 1)² / 2^129 for σ blocks in q messages (McGrew–Viega; the CFRG's AEAD-limits
    /// draft). A message holds at most 2^12 blocks (65,535 bytes), so 2^24 messages are at most
    /// 2^36 blocks, an advantage of at most 2^-57, the margin TLS 1.3 keeps (RFC 8446 §5.5:
    /// 2^24.5 full records). The 96-bit nonce is the counter, so it never repeats under a key.
    public static let aesGCMRejectAfterMessages: UInt64 = 1 << 24
    /// The initiator starts a new handshake when its current key is this old
    /// (`Rekey-After-Time`, 120 s; whitepaper 6.1, 6.3).
    public static let rekeyAfterTime: Duration = .seconds(120)
    /// A key older than this is neither used to send nor to receive
    /// (`Reject-After-Time`, 180 s; whitepaper 6.1, 6.2).
    public static let rejectAfterTime: Duration = .seconds(180)
    /// Handshake retries give up after this long (`Rekey-Attempt-Time`, 90 s; whitepaper 6.1, 6.4).
    public static let rekeyAttemptTime: Duration = .seconds(90)
    /// An unanswered initiation is retransmitted after this long, plus jitter
    /// (`Rekey-Timeout`, 5 s; whitepaper 6.1, 6.4).
    public static let rekeyTimeout: Duration = .seconds(5)
    /// Upper bound of the random jitter added to each handshake retransmission. The whitepaper
    /// (6.4) asks for jitter without a figure; a third of a second is what the Linux and Go
    /// implementations use.
    public static let rekeyTimeoutJitterMaximum: Duration = .milliseconds(333)
    /// A peer that received data and sent nothing for this long sends a keepalive
    /// (`Keepalive-Timeout`, 10 s; whitepaper 6.1, 6.5).
    public static let keepaliveTimeout: Duration = .seconds(10)
    /// The cookie secret rotates, and a received cookie expires, after this long
    /// (`Cookie-Refresh-Time`, 120 s; whitepaper 5.4.7, 6.1).
    public static let cookieRefreshTime: Duration = .seconds(120)

    // MARK: Replay protection (whitepaper 5.4.6, RFC 6479)

    /// Counters behind the highest one accepted that the replay window still tracks: RFC 6479's
    /// sliding bitmap of 128 × 64 bits less one block, as wireguard-go (whitepaper 5.4.6 asks for
    /// "a sliding window" after RFC 6479). A counter `c` is in the window when
    /// `highest − c <= replayWindowSize`.
    public static let replayWindowSize = 8128

    // MARK: vpnd's TCP transport (vpnd addition, DESIGN.md "Messages")

    /// Bytes of the big-endian length that precedes each message on a TCP stream (vpnd addition).
    public static let tcpLengthPrefixSize = 2
    /// Largest message length a 2-byte TCP length prefix can carry (vpnd addition). Over TCP the
    /// tunnel MTU must therefore be at most `65535 − 32`.
    public static let maximumTCPFrameLength = 65535
}

/// Tunable sizes of vpnd's data path: queue depths, batch and pool sizes.
///
/// Unlike ``Spec``, nothing here is part of the protocol; values start small and grow only when
/// a benchmark shows they should (wireguard-go's `queueconstants_*.go` plays this role).
public enum Tuning {
    /// Packets held per peer while a handshake is in flight; more are dropped with `queueFull`.
    public static let stagedPacketsPerPeer = 128
    /// Staging queues kept for reuse once their peer's packets went out (a peer holds one only
    /// while something waits for its handshake; the rest are freed).
    public static let spareStagingQueues = 16
    /// AEAD jobs one batch of a multi-threaded data plane holds (``CryptoBatch``): 8 tun reads
    /// of up to 128 segments. Beyond it the core seals and opens inline.
    public static let cryptoBatchCapacity = 1024
    /// Datagrams moved per `recvmmsg`/`sendmmsg` batch.
    public static let batchSize = 32
    /// Packet buffers each data-plane thread allocates at start-up.
    public static let packetBuffersPerThread = 512
    /// Default tunnel MTU, as `wg-quick` chooses for an IPv6 underlay (1500 − 80).
    public static let defaultMTU = 1420
    /// Bytes a TCP deframer buffers: room for one largest frame and its prefix, twice.
    public static let tcpReceiveBufferSize = 2 * (Spec.tcpLengthPrefixSize + Spec.maximumTCPFrameLength)
}

extension TransportCipher {
    /// REKEY_AFTER_MESSAGES for sessions of this cipher: WireGuard's 2^60 for ChaCha20-Poly1305,
    /// ``Spec/aesGCMRekeyAfterMessages`` for AES-256-GCM.
    @inlinable
    public var rekeyAfterMessages: UInt64 {
        self == .aes256GCM ? Spec.aesGCMRekeyAfterMessages : Spec.rekeyAfterMessages
    }

    /// REJECT_AFTER_MESSAGES for sessions of this cipher: WireGuard's 2^64 − 2^13 − 1 for
    /// ChaCha20-Poly1305, ``Spec/aesGCMRejectAfterMessages`` for AES-256-GCM.
    @inlinable
    public var rejectAfterMessages: UInt64 {
        self == .aes256GCM ? Spec.aesGCMRejectAfterMessages : Spec.rejectAfterMessages
    }
}
