// SPDX-License-Identifier: MIT
import Glibc

/// The signals a daemon acts on, taken synchronously by one thread: blocked in every thread
/// (call ``init()`` before any thread starts, so that none inherits them unblocked) and read
/// with `sigtimedwait`. SIGPIPE is ignored: a peer that closes a socket gives EPIPE instead.
public final class ProcessSignals {
    /// What ended a wait.
    public enum Signal: Sendable, Equatable {
        case interrupt  // SIGINT
        case terminate  // SIGTERM
        case hangup  // SIGHUP
        /// SIGUSR1, the daemon's own "look now" (a peer endpoint changed).
        case wake

        /// The signal's name, e.g. "SIGTERM".
        public var name: String {
            switch self {
            case .interrupt: return "SIGINT"
            case .terminate: return "SIGTERM"
            case .hangup: return "SIGHUP"
            case .wake: return "SIGUSR1"
            }
        }

        var number: Int32 {
            switch self {
            case .interrupt: return SIGINT
            case .terminate: return SIGTERM
            case .hangup: return SIGHUP
            case .wake: return SIGUSR1
            }
        }
    }

    private var set = sigset_t()

    /// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in the calling thread (and every thread it
    /// starts from now on) and ignores SIGPIPE.
    public init() {
        sigemptyset(&set)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGUSR1] { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    /// The next of those signals, waiting at most `seconds`; nil on a timeout.
    public func wait(seconds: Int) -> Signal? {
        var interval = timespec(tv_sec: seconds, tv_nsec: 0)
        switch sigtimedwait(&set, nil, &interval) {
        case SIGINT: return .interrupt
        case SIGTERM: return .terminate
        case SIGHUP: return .hangup
        case SIGUSR1: return .wake
        default: return nil
        }
    }

    /// Sends `signal` to this process (any thread may: the waiting thread takes it).
    public static func send(_ signal: Signal) {
        kill(getpid(), signal.number)
    }
}
