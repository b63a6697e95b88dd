// SPDX-License-Identifier: MIT
import Foundation
import Testing
import VPNBasics
import VPNLinux
@testable import VPNCommands
@testable import VPNCore
import VPNDaemon
import VPNCrypto

/// `vpnd show`'s JSON and text are written without Foundation; these pin them to what Foundation
/// wrote before (JSONSerialization with sorted keys, pretty printing and unescaped slashes;
/// String(format:); URL's parent directory).
@Suite("StatusFormatter")
struct StatusFormatterTests {
    /// The JSON as vpnd wrote it with Foundation (the reference).
    static func foundationJSON(info: DaemonInfo, status: DataPlaneStatus, names: [Bytes32: String] = [:]) -> String {
        func drops(_ drops: [DropReason: UInt64]) -> [String: UInt64] {
            Dictionary(uniqueKeysWithValues: drops.map { ($0.key.description, $0.value) })
        }
        var root: [String: Any] = [
            "interface": info.interfaceName, "public_key": StatusFormatter.publicKey(status), "mode": info.mode, "cipher": info.cipher, "threads": info.threads,
            "transport": info.transport, "drops": drops(status.drops),
            "transport_drops": [
                "socket-full": status.transport.socketFull, "socket-refused": status.transport.socketRefused,
                "no-connection": status.transport.noConnection, "stream-queue-full": status.transport.streamQueueFull,
                "gso-fallbacks": status.transport.gsoFallbacks,
            ],
        ]
        if let port = info.listenPort { root["listen_port"] = port }
        root["mtu"] = status.mtu
        root["unknown_initiators"] = status.unknownInitiators.map { stranger -> [String: Any] in
            [
                "public_key": KeyEncoding.encode(stranger.publicKey), "initiations": stranger.initiations,
                "endpoint": "\(stranger.source)",
                "last_seen_seconds_ago": Double((status.now - stranger.lastSeen).nanosecondsClamped) / 1e9,
            ]
        }
        if let tcp = status.tcp {
            root["tcp"] = [
                "open": tcp.open, "authenticated": tcp.authenticated, "accepted": tcp.accepted, "evicted": tcp.evicted,
                "expired": tcp.expired, "refused_full": tcp.refusedFull, "refused_source_cap": tcp.refusedSourceCap,
                "connects": tcp.connects,
            ]
        }
        root["peers"] = status.peers.map { peer -> [String: Any] in
            var entry: [String: Any] = [
                "public_key": KeyEncoding.encode(peer.publicKey),
                "allowed_ips": peer.allowedIPs.map(\.description),
                "rx_bytes": peer.receivedBytes, "tx_bytes": peer.sentBytes,
                "rx_packets": peer.receivedPackets, "tx_packets": peer.sentPackets,
                "persistent_keepalive": peer.persistentKeepalive.components.seconds,
                "has_session": peer.hasSession, "drops": drops(peer.drops), "path_mtu": peer.pathMTU,
                "handshakes": peer.handshakes, "cookie_replies_received": peer.cookieRepliesReceived,
                "endpoint_configured": peer.endpointConfigured, "handshake_initiations_sent": peer.initiationsSent,
                "handshake_responses_received": peer.responsesReceived,
                "handshake_initiations_unanswered": peer.initiationsUnanswered,
                "handshake_initiations_unanswered_in_a_row": peer.initiationsUnansweredInARow,
                "handshake_initiations_answered": peer.initiationsAnswered,
            ]
            entry["endpoint"] = peer.endpoint.map { "\($0)" } ?? NSNull()
            entry["name"] = names[peer.publicKey] ?? NSNull()
            entry["transport"] = peer.carrier?.description ?? info.transport
            entry["transport_switches"] = peer.carrierSwitches.map { NSNumber(value: $0) } ?? NSNull()
            entry["echoes_probes"] = peer.echoesProbes.map { $0 as Any } ?? NSNull()
            if let latest = peer.latestHandshake {
                entry["latest_handshake_seconds_ago"] = Double((status.now - latest).nanosecondsClamped) / 1e9
            } else {
                entry["latest_handshake_seconds_ago"] = NSNull()
            }
            return entry
        }
        let data = try! JSONSerialization.data(
            withJSONObject: root, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func peer(_ n: UInt8, handshakeAt: UInt64?, endpoint: Endpoint?, drops: [DropReason: UInt64]) -> PeerStatus {
        PeerStatus(
            publicKey: Bytes32([UInt8](repeating: n, count: 32))!, endpoint: endpoint,
            allowedIPs: n == 2 ? [] : [IPPrefix("10.8.0.\(n)/32")!, IPPrefix("fd00:8::\(n)/128")!],
            latestHandshake: handshakeAt.map { Instant(nanoseconds: $0) },
            receivedBytes: UInt64(n) * 1_234_567_890, receivedPackets: 1_104_837, sentBytes: .max, sentPackets: 0,
            persistentKeepalive: .seconds(n == 1 ? 25 : 0), drops: drops, hasSession: n == 1,
            handshakes: UInt64(n) * 3, cookieRepliesReceived: n == 1 ? .max : 0, endpointConfigured: n == 3,
            initiationsSent: UInt64(n) * 11, responsesReceived: UInt64(n), initiationsUnanswered: UInt64(n) * 5,
            initiationsUnansweredInARow: UInt64(n) * 2, initiationsAnswered: n == 2 ? .max : UInt64(n) * 4)
    }

    static let allDrops = Dictionary(uniqueKeysWithValues: DropReason.allCases.map { ($0, UInt64($0.rawValue) * 7 + 1) })

    static let cases: [(DaemonInfo, DataPlaneStatus)] = {
        let now: UInt64 = 1_000_000_000_000
        let info = DaemonInfo(
            interfaceName: "vpnd0", listenPort: 51820,
            mode: "tun", transport: "udp")
        var odd = info
        odd.interfaceName = "a/b \"q\" \\ \t\n\u{1}\u{8}\u{c}\r\u{7f} é"
        odd.listenPort = nil
        let peers = [
            peer(1, handshakeAt: now - 11_111_663_211, endpoint: Endpoint(ipv4: 198, 18, 0, 2, port: 46186), drops: [:]),
            peer(2, handshakeAt: nil, endpoint: nil, drops: allDrops),
            peer(3, handshakeAt: now, endpoint: Endpoint("[fd00::1]:51820"), drops: [.noRoute: 2]),
            peer(4, handshakeAt: now - 120_000_000_000, endpoint: nil, drops: [:]),
            peer(5, handshakeAt: now - 10_000, endpoint: nil, drops: [:]),
            peer(6, handshakeAt: now - 100_000_000_000 / 3, endpoint: nil, drops: [:]),
        ]
        var tcpInfo = info
        tcpInfo.transport = "tcp"
        let tcp = TCPConnectionStatus(
            open: 256, authenticated: 3, accepted: 123_456, evicted: 100_000, expired: 20_000, refusedFull: 7,
            refusedSourceCap: .max, connects: 0)
        let transport = TransportCounters(
            socketFull: 12, socketRefused: 3, noConnection: 0, streamQueueFull: .max, gsoFallbacks: 1)
        return [
            (info, DataPlaneStatus(tunnel: TunnelStatus(publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: Instant(nanoseconds: now), mode: .tun, drops: [:], peers: [], privateKey: SecretKey([UInt8](repeating: 5, count: 32))))),
            (tcpInfo, DataPlaneStatus(tunnel: TunnelStatus(publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: Instant(nanoseconds: now), mode: .tun, drops: [:], peers: Array(peers.prefix(1)), tcp: tcp), transport: transport)),
            (info, DataPlaneStatus(tunnel: TunnelStatus(publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: Instant(nanoseconds: now), mode: .tun, drops: [.noRoute: 2], peers: Array(peers.prefix(1))))),
            (odd, DataPlaneStatus(tunnel: TunnelStatus(publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: Instant(nanoseconds: now), mode: .tap, drops: allDrops, peers: peers, mtu: 1420, unknownInitiators: [
                UnknownInitiator(publicKey: Bytes32([UInt8](repeating: 7, count: 32))!, initiations: 3, lastSeen: Instant(nanoseconds: now - 2_500_000_000), source: Endpoint(ipv4: 198, 18, 0, 9, port: 40000)),
                UnknownInitiator(publicKey: Bytes32([UInt8](repeating: 8, count: 32))!, initiations: .max, lastSeen: Instant(nanoseconds: now), source: Endpoint("[fd00::9]:1")!),
            ]), transport: transport)),
        ]
    }()

    @Test func jsonIsWhatFoundationWrote() {
        for (info, status) in Self.cases {
            #expect(StatusFormatter.json(info: info, status: status) == Self.foundationJSON(info: info, status: status))
            // Named peers: a "name" string, null for the others (one with characters JSON escapes).
            let names = Dictionary(uniqueKeysWithValues: status.peers.prefix(2).enumerated().map {
                ($0.element.publicKey, $0.offset == 0 ? "alice" : "b\"o\\b é")
            })
            let json = StatusFormatter.json(info: info, status: status, names: names)
            #expect(json == Self.foundationJSON(info: info, status: status, names: names))
            if !status.peers.isEmpty { #expect(json.contains("\"name\" : \"alice\"")) }
        }
    }

    /// `vpnd show` prints a peer's name on the line after its key (the key's line stays as it was).
    @Test func nameLine() {
        let info = DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: "tun", transport: "udp")
        let named = Self.peer(1, handshakeAt: nil, endpoint: nil, drops: [:])
        let unnamed = Self.peer(2, handshakeAt: nil, endpoint: nil, drops: [:])
        let status = DataPlaneStatus(tunnel: TunnelStatus(
            publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: .zero, mode: .tun, drops: [:],
            peers: [named, unnamed]))
        let text = StatusFormatter.text(info: info, status: status, names: [named.publicKey: "alice"])
        #expect(text.contains("\npeer: \(KeyEncoding.encode(named.publicKey))\n  name: alice\n  endpoint:"))
        #expect(text.contains("\npeer: \(KeyEncoding.encode(unnamed.publicKey))\n  endpoint:"))
        #expect(text.components(separatedBy: "name:").count == 2)
    }

    /// The TCP line of `vpnd show`: admission counters on a server, the connect count on a client.
    @Test func tcpConnectionsLine() {
        var info = DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: "tun", transport: "tcp")
        var status = DataPlaneStatus(tunnel: TunnelStatus(
            publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: .zero, mode: .tun, drops: [:], peers: [],
            tcp: TCPConnectionStatus(
                open: 9, authenticated: 1, accepted: 50, evicted: 30, expired: 10, refusedFull: 2, refusedSourceCap: 4)))
        #expect(StatusFormatter.text(info: info, status: status).contains(
            "  tcp connections: 9 open (1 authenticated); 50 accepted, unauthenticated ones 30 evicted and 10 expired, "
                + "2 refused (all authenticated), 4 refused (per-source cap)\n"))
        info.listenPort = nil
        status.tcp = TCPConnectionStatus(open: 1, authenticated: 1, connects: 1)
        #expect(StatusFormatter.text(info: info, status: status).contains("  tcp connections: 1 open (1 authenticated); connected 1 time\n"))
        status.tcp = nil
        #expect(!StatusFormatter.text(info: info, status: status).contains("tcp connections"))
    }

    /// Drops below the tunnel: one line naming the counters that are not zero, none when all are.
    @Test func transportDropsLine() {
        let info = DaemonInfo(interfaceName: "vpn0", listenPort: 51820, mode: "tun", transport: "udp")
        var status = DataPlaneStatus(tunnel: TunnelStatus(
            publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: .zero, mode: .tun, drops: [:], peers: []))
        #expect(!StatusFormatter.text(info: info, status: status).contains("transport drops"))
        status.transport = TransportCounters(socketFull: 5, gsoFallbacks: 2)
        #expect(StatusFormatter.text(info: info, status: status).contains("  transport drops: socket-full 5, gso-fallbacks 2\n"))
    }

    @Test func numbersAreWhatFoundationWrote() throws {
        for value: Double in [0, 5, 0.5, 1e-5, 1e-7, 123456789.123, 1e16, 1e21, 11.111663211, 0.1 + 0.2, 4e-6, 33333.333333333] {
            let data = try JSONSerialization.data(withJSONObject: [value], options: [])
            #expect("[" + JSONValue.number(value) + "]" == String(decoding: data, as: UTF8.self))
        }
    }

    @Test func byteCountsAreWhatStringFormatWrote() {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        for count: UInt64 in [0, 1, 1023, 1024, 1536, 1_048_575, 1_048_576, 329_515_254, 5_000_000_000_000, .max] {
            var value = Double(count)
            var unit = 0
            while value >= 1024 && unit < units.count - 1 {
                value /= 1024
                unit += 1
            }
            let expected = unit == 0 ? "\(count) B" : String(format: "%.2f %@", value, units[unit])
            #expect(StatusFormatter.bytes(count) == expected)
        }
    }

    @Test func containingDirectoryIsURLs() {
        for path in ["server.conf", "./server.conf", "keys/x.conf", "/etc/vpnd/server.conf", "/x.conf", "../a/b.conf",
                     "a//b.conf", "/etc//vpnd/x.conf", "/etc/./vpnd/../x.conf", "dir/", "/etc/vpnd/"] {
            #expect(Posix.containingDirectory(of: path) == URL(fileURLWithPath: path).deletingLastPathComponent().path, "\(path)")
        }
    }
}
