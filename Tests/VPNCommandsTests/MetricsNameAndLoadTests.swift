// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
@testable import VPNCore
import VPNCrypto
import VPNDaemon
@testable import VPNCommands

/// The metrics' `name` label and the interface's load families (handshake backlog, loop time).
@Suite("MetricsFormatter: names and load")
struct MetricsNameAndLoadTests {
    static let info = DaemonInfo(interfaceName: "vpnd0", listenPort: 51820, mode: "tun", transport: "udp")

    static func peer(_ n: UInt8, drops: [DropReason: UInt64] = [:]) -> PeerStatus {
        PeerStatus(
            publicKey: Bytes32([UInt8](repeating: n, count: 32))!, endpoint: nil, allowedIPs: [], latestHandshake: nil,
            receivedBytes: 1, receivedPackets: 1, sentBytes: 1, sentPackets: 1, persistentKeepalive: .zero,
            drops: drops, hasSession: false, handshakes: 0, cookieRepliesReceived: 0)
    }

    static func status(_ peers: [PeerStatus], loop: LoopTiming = LoopTiming(), backlog: Int = 0) -> DataPlaneStatus {
        DataPlaneStatus(
            tunnel: TunnelStatus(
                publicKey: Bytes32([UInt8](repeating: 9, count: 32))!, now: .zero, mode: .tun, drops: [:], peers: peers),
            loop: loop, handshakeBacklog: backlog)
    }

    /// The sample lines, as (name, labels, value).
    static func samples(_ text: String) -> [(name: String, labels: [String: String], value: String)] {
        text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line in
            let open = line.firstIndex(of: "{")!, close = line.lastIndex(of: "}")!
            var labels: [String: String] = [:]
            // Values here have no comma or escaped quote.
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return (String(line[..<open]), labels, String(line[line.index(after: close)...].dropFirst()))
        }
    }

    @Test("every per-peer sample has interface, public_key and name (empty for a peer without one)")
    func nameLabel() {
        let alice = Self.peer(1, drops: [.noRoute: 3]), anonymous = Self.peer(2, drops: [.noRoute: 1])
        let text = MetricsFormatter.text(
            info: Self.info, status: Self.status([alice, anonymous]), wallSeconds: 1_700_000_000,
            names: [alice.publicKey: "alice \"the\" admin"])
        #expect(text.contains("name=\"alice \\\"the\\\" admin\""))
        let perPeer = Self.samples(text).filter { $0.labels["public_key"] != nil }
        #expect(perPeer.count >= 20)
        for sample in perPeer {
            let expected = sample.labels["public_key"] == KeyEncoding.encode(alice.publicKey) ? "alice \\\"the\\\" admin" : ""
            #expect(sample.labels["name"] == expected, "\(sample.name)")
            #expect(sample.labels["interface"] == "vpnd0")
        }
        // The drops family has the same labels plus reason.
        #expect(perPeer.filter { $0.name == "vpnd_peer_drops_total" }.allSatisfy { $0.labels.count == 4 })
        // Families without a peer have no name label.
        #expect(Self.samples(text).filter { $0.labels["public_key"] == nil }.allSatisfy { $0.labels["name"] == nil })
    }

    @Test("the handshake backlog, the loop histogram (cumulative buckets, +Inf = count) and the longest loop")
    func loadFamilies() {
        var loop = LoopTiming()
        for nanoseconds: UInt64 in [1_000, 10_000, 10_001, 700_000, 3_000_000, 90_000_000] {
            loop.record(nanoseconds: nanoseconds)
        }
        let text = MetricsFormatter.text(
            info: Self.info, status: Self.status([], loop: loop, backlog: 7), wallSeconds: 0, longestLoopNanoseconds: 123_000)
        #expect(text.contains("# TYPE vpnd_dataplane_loop_seconds histogram\n"))
        #expect(text.contains("\nvpnd_handshake_backlog{interface=\"vpnd0\"} 7\n"))
        #expect(text.contains("\nvpnd_dataplane_loop_max_seconds{interface=\"vpnd0\"} 0.000123\n"))
        #expect(text.contains("\nvpnd_dataplane_loop_seconds_count{interface=\"vpnd0\"} 6\n"))
        #expect(text.contains("\nvpnd_dataplane_loop_seconds_sum{interface=\"vpnd0\"} 0.093721001\n"))
        let buckets = Self.samples(text).filter { $0.name == "vpnd_dataplane_loop_seconds_bucket" }
        #expect(buckets.map { $0.labels["le"]! } == [
            "0.00001", "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.05", "+Inf",
        ])
        #expect(buckets.map(\.value) == ["2", "3", "3", "3", "3", "3", "4", "4", "5", "5", "5", "6"])
        // Without a scrape's maximum, the snapshot's own.
        let own = MetricsFormatter.text(info: Self.info, status: Self.status([], loop: loop), wallSeconds: 0)
        #expect(own.contains("\nvpnd_dataplane_loop_max_seconds{interface=\"vpnd0\"} 0.09\n"))
        // Two daemons merge with each family once.
        let merged = MetricsFormatter.merge([text, own])
        #expect(merged.split(separator: "\n").filter { $0 == "# TYPE vpnd_dataplane_loop_seconds histogram" }.count == 1)
        #expect(Self.samples(merged).filter { $0.name == "vpnd_dataplane_loop_seconds_bucket" }.count == 24)
    }

    @Test("bucket bounds print as plain decimal seconds")
    func seconds() {
        #expect(MetricsFormatter.seconds(10_000) == "0.00001")
        #expect(MetricsFormatter.seconds(2_500_000) == "0.0025")
        #expect(MetricsFormatter.seconds(1_000_000_000) == "1")
        #expect(MetricsFormatter.seconds(1_500_000_001) == "1.500000001")
        #expect(MetricsFormatter.seconds(0) == "0")
    }

    @Test("names come from the config's comments and are replaced whole")
    func peerNames() throws {
        let config = try Config.parse(
            """
            [Interface]
            PrivateKey = \(KeyEncoding.encode(Bytes32([UInt8](repeating: 1, count: 32))!))
            [Peer] # alice
            PublicKey = \(KeyEncoding.encode(Bytes32([UInt8](repeating: 2, count: 32))!))
            [Peer]
            PublicKey = \(KeyEncoding.encode(Bytes32([UInt8](repeating: 3, count: 32))!))
            """, fileName: "t.conf")
        let names = PeerNames(PeerNames.of(config.peers))
        #expect(names.all == [Bytes32([UInt8](repeating: 2, count: 32))!: "alice"])
        var renamed = config.peers
        renamed[0].name = nil
        renamed[1].name = "bob"
        names.replace(with: renamed)
        #expect(names.all == [Bytes32([UInt8](repeating: 3, count: 32))!: "bob"])
    }
}
