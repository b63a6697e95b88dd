// SPDX-License-Identifier: MIT
import Logging
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon

/// The core reports events as values; these are the words the daemon logs for them.
@Suite("Tunnel events as log lines")
struct TunnelEventLogTests {
    static let key = Bytes32([UInt8](repeating: 7, count: 32))!
    static var short: String { String(KeyEncoding.encode(key).prefix(8)) + "…" }
    static let source = Endpoint(ipv4: 192, 0, 2, 9, port: 4000)

    @Test("the give-up line names REKEY_ATTEMPT_TIME (with up to three decimals) and the fix; warning only for a peer we dial")
    func giveUp() {
        let dialled = TunnelEvent.handshakeGaveUp(peer: Self.key, after: .seconds(90), configuredEndpoint: true).logLine
        #expect(dialled.level == Logger.Level.warning)
        #expect(dialled.message == "peer \(Self.short): no handshake answer after 90 s: check the peer's Endpoint, PublicKey, Mode and Cipher")
        let remembered = TunnelEvent.handshakeGaveUp(peer: Self.key, after: .milliseconds(1500), configuredEndpoint: false).logLine
        #expect(remembered.level == Logger.Level.debug)
        #expect(remembered.message.contains("after 1.5 s: "))
        #expect(TunnelEvent.handshakeGaveUp(peer: Self.key, after: .milliseconds(2050), configuredEndpoint: true)
            .logLine.message.contains("after 2.05 s: "))
    }

    @Test("the first session is news (info), a rekey is not (debug); who initiated is named")
    func completed() {
        let first = TunnelEvent.handshakeCompleted(peer: Self.key, weInitiated: true, firstSession: true).logLine
        #expect(first.level == Logger.Level.info)
        #expect(first.message == "peer \(Self.short): handshake completed (we initiated), session established")
        let rekey = TunnelEvent.handshakeCompleted(peer: Self.key, weInitiated: false, firstSession: false).logLine
        #expect(rekey.level == Logger.Level.debug)
        #expect(rekey.message == "peer \(Self.short): handshake completed (peer initiated), session established")
    }

    @Test("a first endpoint is debug, a change info")
    func endpoint() {
        #expect(TunnelEvent.endpointChanged(peer: Self.key, previous: nil, endpoint: Self.source).logLine.level == Logger.Level.debug)
        let moved = TunnelEvent.endpointChanged(peer: Self.key, previous: Self.source, endpoint: Self.source).logLine
        #expect(moved.level == Logger.Level.info)
        #expect(moved.message == "peer \(Self.short) endpoint changed to \(Self.source)")
    }

    @Test("the hints name the fix: no response yet, an unauthenticated response, a narrowed path, a black hole")
    func hints() {
        let waiting = TunnelEvent.noResponseYet(peer: Self.key, waited: .seconds(5)).logLine
        #expect(waiting.level == Logger.Level.info)
        #expect(waiting.message.contains("no valid handshake response after 5 s, still trying: check the peer's Endpoint and PublicKey"))
        #expect(TunnelEvent.responseNotAuthenticated(peer: Self.key, source: Self.source).logLine.level == Logger.Level.warning)
        let narrowed = TunnelEvent.pathNarrowed(peer: Self.key, endpoint: Self.source, outerMTU: 1280, innerMTU: 1220).logLine
        #expect(narrowed.message.hasSuffix("carries 1280-byte datagrams: sending inner packets of at most 1220 bytes"))
        let hole = TunnelEvent.blackHoleAssumed(peer: Self.key, innerMTU: 1200).logLine
        #expect(hole.level == Logger.Level.warning)
        #expect(hole.message.contains("at most 1200 bytes; set MTU by hand on both ends to choose"))
    }
}
