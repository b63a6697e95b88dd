// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore
import VPNCrypto

/// The log text of the core's events: the one place where they become words.
extension TunnelEvent {
    /// The level and the line for the log.
    public var logLine: (level: Logger.Level, message: String) {
        switch self {
        case .initiationStarted(let peer, let isRetry):
            return (.debug, "peer \(Self.short(peer)): sending handshake initiation\(isRetry ? " (retry)" : "")")
        case .noResponseYet(let peer, let waited):
            // Info: a peer that is merely not up yet is no mistake.
            return (.info,
                "peer \(Self.short(peer)): no valid handshake response after \(Self.seconds(waited)) s, still trying: \(HandshakeTrouble.noResponse)")
        case .initiationImpossible(let peer, let error):
            return (.warning, "peer \(Self.short(peer)): \(error)")
        case .initiationNotDecrypted(let source):
            return (.debug, "handshake initiation from \(source) did not decrypt: \(HandshakeTrouble.notDecrypted)")
        case .initiationFromUnknownKey(let key, let source):
            return (.debug,
                "handshake initiation from \(source) by a public key that is not a [Peer] here: \(KeyEncoding.encode(key))")
        case .responseNotAuthenticated(let peer, let source):
            return (.warning,
                "peer \(Self.short(peer)): handshake response from \(source) did not authenticate: \(HandshakeTrouble.responseNotAuthenticated)")
        case .initiationAnswered(let peer, let source):
            return (.debug, "peer \(Self.short(peer)): answered handshake initiation from \(source)")
        case .handshakeCompleted(let peer, let weInitiated, let firstSession):
            return (firstSession ? .info : .debug,
                "peer \(Self.short(peer)): handshake completed (\(weInitiated ? "we" : "peer") initiated), session established")
        case .cookieReceived(let peer):
            return (.debug, "peer \(Self.short(peer)): received a cookie reply (the peer is under load)")
        case .endpointChanged(let peer, let previous, let endpoint):
            return previous == nil
                ? (.debug, "peer \(Self.short(peer)) is at \(endpoint)")
                : (.info, "peer \(Self.short(peer)) endpoint changed to \(endpoint)")
        case .handshakeGaveUp(let peer, let after, let configuredEndpoint):
            // A remembered (not configured) endpoint going quiet is a client gone offline, not a mistake.
            return (configuredEndpoint ? .warning : .debug,
                "peer \(Self.short(peer)): \(Self.gaveUpText(after: after))")
        case .pathNarrowed(let peer, let endpoint, let outerMTU, let innerMTU):
            return (.info,
                "peer \(Self.short(peer)): the path to \(endpoint) carries \(outerMTU)-byte datagrams: sending inner packets of at most \(innerMTU) bytes")
        case .blackHoleAssumed(let peer, let innerMTU):
            return (.warning,
                "peer \(Self.short(peer)): large packets go unanswered while small ones get through, and the peer does not answer path probes (WireGuard?): assuming a path that drops them, sending inner packets of at most \(innerMTU) bytes; set MTU by hand on both ends to choose")
        case .carrierChanged(let peer, let carrier, _, let reason):
            let why: String
            switch reason {
            case .handshakeUnanswered(let wait): why = "no handshake answer over \(carrier == .tcp ? "UDP" : "TCP") within \(Self.seconds(wait)) s"
            case .udpSilent(let silence): why = "nothing came back over UDP for \(Self.seconds(silence)) s while sending, probes included (UDP blocked?)"
            case .udpAnswering(let time): why = "UDP answered every probe for \(Self.seconds(time)) s"
            case .tcpUnanswered(let wait): why = "nothing came back over TCP within \(Self.seconds(wait)) s either"
            }
            return (.info, "peer \(Self.short(peer)): session moved to \(carrier == .tcp ? "TCP" : "UDP"), no new handshake: \(why)")
        case .reconnected(let peer, let kept):
            return kept
                ? (.info, "peer \(Self.short(peer)): TCP connection made again; the session goes on over it")
                : (.info, "peer \(Self.short(peer)): nothing authenticated came back after the TCP reconnect (the peer lost its keys?): new handshake")
        }
    }

    /// The give-up text: REKEY_ATTEMPT_TIME and the usual causes.
    static func gaveUpText(after: Duration) -> String {
        "no handshake answer after \(seconds(after)) s: check the peer's Endpoint, PublicKey, Mode and Cipher"
    }

    /// The first 8 characters of a public key's base64 and an ellipsis.
    static func short(_ key: Bytes32) -> String {
        String(KeyEncoding.encode(key).prefix(8)) + "…"
    }

    /// A duration as seconds with up to three decimals, e.g. `90` or `1.5`.
    static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        let millis = max(whole * 1000 + attoseconds / 1_000_000_000_000_000, 0)
        var text = String(millis / 1000)
        var fraction = millis % 1000
        if fraction != 0 {
            var digits = 3
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let padded = String(fraction)
            text += "." + String(repeating: "0", count: digits - padded.count) + padded
        }
        return text
    }
}

/// What each way a handshake fails says about its cause: the one place this knowledge is written,
/// for the log lines above and for `vpnd doctor`.
public enum HandshakeTrouble {
    /// Our initiations get no valid response (a wrong PublicKey for the peer fails mac1 there and is
    /// dropped without a word; so is an initiation in the other Mode, or from a key it has no
    /// [Peer] for).
    public static let noResponse =
        "check the peer's Endpoint and PublicKey, and that both ends use the same PresharedKey, Mode, Cipher and Transport"
    /// An initiation passed mac1 (its sender knows our public key) and did not decrypt: the sender
    /// runs the other Mode or Cipher, whose Noise identifier differs.
    public static let notDecrypted = "wrong key, or a peer in the other Mode (tun/tap) or with another Cipher"
    /// The peer answered our initiation and its response did not authenticate: the pre-shared key
    /// is mixed in only there (IKpsk2), so different PresharedKeys fail exactly here.
    public static let responseNotAuthenticated = "check both ends' keys, PresharedKey, Mode (tun/tap) and Cipher"
}
