// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto

/// The time and message limits that drive ``PeerTimers``: WireGuard's values by default.
///
/// Production always uses ``wireGuard``; any other value breaks interoperability. Tests and the
/// integration suite shorten the times with ``shortened(rekeyAfterTime:)`` so that a rekey or a
/// give-up happens in seconds instead of minutes.
public struct TimerSettings: Sendable, Equatable {
    /// REKEY_AFTER_TIME: the initiator of a session starts a new handshake when it sends on a key
    /// older than this (whitepaper §6.1, §6.2). 120 s.
    public var rekeyAfterTime: Duration
    /// REJECT_AFTER_TIME: a key this old is no longer used to send or receive (§6.1, §6.2). 180 s.
    public var rejectAfterTime: Duration
    /// REKEY_ATTEMPT_TIME: how long handshake initiations are retried before giving up (§6.1, §6.4).
    /// 90 s.
    public var rekeyAttemptTime: Duration
    /// REKEY_TIMEOUT: the wait for a handshake response before retrying, and the minimum gap
    /// between two initiations (§6.1, §6.4). 5 s.
    public var rekeyTimeout: Duration
    /// The largest random jitter added to REKEY_TIMEOUT, inclusive (§6.4: "up to 333 ms"). 333 ms.
    public var rekeyTimeoutJitter: Duration
    /// KEEPALIVE_TIMEOUT: after receiving data and sending nothing for this long, send a keepalive
    /// (§6.1, §6.5). 10 s.
    public var keepaliveTimeout: Duration
    /// REKEY_AFTER_MESSAGES: a sending counter above this asks for a new handshake, whoever
    /// initiated the session (§6.1, §6.2). 2^60.
    public var rekeyAfterMessages: UInt64
    /// REJECT_AFTER_MESSAGES: a key whose sending counter reached this is no longer used (§6.1,
    /// §6.2). 2^64 − 2^13 − 1.
    public var rejectAfterMessages: UInt64

    /// Creates settings; every argument defaults to WireGuard's value from ``Spec``.
    public init(
        rekeyAfterTime: Duration = Spec.rekeyAfterTime,
        rejectAfterTime: Duration = Spec.rejectAfterTime,
        rekeyAttemptTime: Duration = Spec.rekeyAttemptTime,
        rekeyTimeout: Duration = Spec.rekeyTimeout,
        rekeyTimeoutJitter: Duration = Spec.rekeyTimeoutJitterMaximum,
        keepaliveTimeout: Duration = Spec.keepaliveTimeout,
        rekeyAfterMessages: UInt64 = Spec.rekeyAfterMessages,
        rejectAfterMessages: UInt64 = Spec.rejectAfterMessages
    ) {
        self.rekeyAfterTime = rekeyAfterTime
        self.rejectAfterTime = rejectAfterTime
        self.rekeyAttemptTime = rekeyAttemptTime
        self.rekeyTimeout = rekeyTimeout
        self.rekeyTimeoutJitter = rekeyTimeoutJitter
        self.keepaliveTimeout = keepaliveTimeout
        self.rekeyAfterMessages = rekeyAfterMessages
        self.rejectAfterMessages = rejectAfterMessages
    }

    /// WireGuard's values (whitepaper §6.1). The only settings that interoperate.
    public static let wireGuard = TimerSettings()

    /// These settings with the message limits lowered to `cipher`'s where those are smaller
    /// (AES-256-GCM: ``Spec/aesGCMRekeyAfterMessages``, ``Spec/aesGCMRejectAfterMessages``).
    public func limited(to cipher: TransportCipher) -> TimerSettings {
        var limited = self
        limited.rekeyAfterMessages = min(rekeyAfterMessages, cipher.rekeyAfterMessages)
        limited.rejectAfterMessages = min(rejectAfterMessages, cipher.rejectAfterMessages)
        return limited
    }

    /// WireGuard's settings with every time scaled by `rekeyAfterTime` / 120 s; message limits
    /// stay as they are.
    ///
    /// `shortened(rekeyAfterTime: .seconds(2))` rejects keys after 3 s, retries handshakes every
    /// 83 ms (+ up to 5.5 ms of jitter) for 1.5 s, and sends passive keepalives after 167 ms, so the
    /// timers keep their proportions and ``maxHandshakeAttempts`` stays 18.
    public static func shortened(rekeyAfterTime: Duration) -> TimerSettings {
        let base = TimerSettings.wireGuard
        let factor = Double(rekeyAfterTime.nanosecondsClamped) / Double(base.rekeyAfterTime.nanosecondsClamped)
        func scale(_ value: Duration) -> Duration {
            .nanoseconds(Int64((Double(value.nanosecondsClamped) * factor).rounded()))
        }
        return TimerSettings(
            rekeyAfterTime: rekeyAfterTime,
            rejectAfterTime: scale(base.rejectAfterTime),
            rekeyAttemptTime: scale(base.rekeyAttemptTime),
            rekeyTimeout: scale(base.rekeyTimeout),
            rekeyTimeoutJitter: scale(base.rekeyTimeoutJitter),
            keepaliveTimeout: scale(base.keepaliveTimeout))
    }

    /// MAX_TIMER_HANDSHAKES: how many initiations one handshake round sends before giving up,
    /// REKEY_ATTEMPT_TIME / REKEY_TIMEOUT rounded to the nearest whole number (18; at least 1).
    public var maxHandshakeAttempts: Int {
        let timeout = rekeyTimeout.nanosecondsClamped
        guard timeout > 0 else { return 1 }
        let attempt = max(rekeyAttemptTime.nanosecondsClamped, 0)
        return max(1, Int((attempt + timeout / 2) / timeout))
    }

    /// The idle time after sending data with nothing received that starts a new handshake,
    /// KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (§6.5). 15 s, plus jitter when armed.
    public var newHandshakeTimeout: Duration { keepaliveTimeout + rekeyTimeout }

    /// The key age past which the initiator rekeys on receiving data,
    /// REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT − REKEY_TIMEOUT (§6.2). 165 s.
    public var rekeyOnReceiveAge: Duration { rejectAfterTime - keepaliveTimeout - rekeyTimeout }

    /// How long key material survives without a new session, REJECT_AFTER_TIME × 3 (§6.3). 540 s.
    public var zeroKeysAfter: Duration { rejectAfterTime * 3 }
}
