// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon

/// `vpnd metrics`: the status of one daemon in the Prometheus text exposition format (0.0.4),
/// one family per block (`# HELP`, `# TYPE`, its samples), so that blocks of several daemons
/// merge by family (``merge(_:)``).
///
/// Every per-peer sample has the labels `interface`, `public_key` and `name` (the peer's `# NAME`
/// from the config; empty when it has none, so that every sample of a family has the same
/// label set).
enum MetricsFormatter {
    /// - Parameters:
    ///   - names: the peers' names by public key (``PeerNames``).
    ///   - longestLoopNanoseconds: the longest data-plane iteration since the previous scrape
    ///     (``DataPlaneControl/takeLongestLoop()``); nil: the snapshot's own (since the previous
    ///     snapshot).
    static func text(
        info: DaemonInfo, status: DataPlaneStatus, wallSeconds: Int64, names: [Bytes32: String] = [:],
        longestLoopNanoseconds: UInt64? = nil
    ) -> String {
        let interface = [("interface", info.interfaceName)]
        var families: [Family] = []
        func family(_ name: String, _ type: String, _ help: String, _ samples: [Sample]) {
            families.append(Family(name: name, type: type, help: help, samples: samples))
        }
        func peerLabels(_ peer: PeerStatus) -> [(String, String)] {
            interface + [("public_key", KeyEncoding.encode(peer.publicKey)), ("name", names[peer.publicKey] ?? "")]
        }
        func perPeer(_ value: (PeerStatus) -> Double) -> [Sample] {
            status.peers.map { Sample(labels: peerLabels($0), value: value($0)) }
        }
        family("vpnd_peers", "gauge", "Peers configured on the interface.", [Sample(labels: interface, value: Double(status.peers.count))])
        family(
            "vpnd_peer_receive_bytes_total", "counter", "Bytes of inner packets received from the peer.",
            perPeer { Double($0.receivedBytes) })
        family(
            "vpnd_peer_transmit_bytes_total", "counter", "Bytes of inner packets sent to the peer.",
            perPeer { Double($0.sentBytes) })
        family(
            "vpnd_peer_receive_packets_total", "counter", "Packets received from the peer (keepalives included).",
            perPeer { Double($0.receivedPackets) })
        family(
            "vpnd_peer_transmit_packets_total", "counter", "Packets sent to the peer.", perPeer { Double($0.sentPackets) })
        family(
            "vpnd_peer_latest_handshake_seconds", "gauge",
            "Unix time of the latest completed handshake with the peer; 0 before the first.",
            perPeer { peer in peer.latestHandshake.map { Double(wallSeconds - (status.now - $0).components.seconds) } ?? 0 })
        family(
            "vpnd_peer_handshakes_total", "counter", "Sessions established with the peer (either side initiating).",
            perPeer { Double($0.handshakes) })
        family(
            "vpnd_peer_cookie_replies_total", "counter", "Cookie replies received from the peer (it was under load).",
            perPeer { Double($0.cookieRepliesReceived) })
        family("vpnd_peer_session", "gauge", "1 when a session key is usable now.", perPeer { $0.hasSession ? 1 : 0 })
        family(
            "vpnd_peer_path_mtu_bytes", "gauge", "The inner packet size usable towards the peer now.",
            perPeer { Double($0.pathMTU) })
        family(
            "vpnd_peer_transport_tcp", "gauge",
            "1 when the peer is reached over TCP now, 0 over UDP (by the interface's Transport where it has one).",
            perPeer { peer in (peer.carrier.map { $0 == .tcp } ?? (info.transport == "tcp")) ? 1 : 0 })
        let choosing = status.peers.filter { $0.carrierSwitches != nil }
        if !choosing.isEmpty {
            family(
                "vpnd_peer_transport_switches_total", "counter",
                "Moves of the session between UDP and TCP (Transport = auto, the peers this end dials).",
                choosing.map { Sample(labels: peerLabels($0), value: Double($0.carrierSwitches ?? 0)) })
        }
        family(
            "vpnd_peer_drops_total", "counter", "Packets dropped for the peer, by reason.",
            status.peers.flatMap { peer in
                peer.drops.sorted { $0.key.rawValue < $1.key.rawValue }.map {
                    Sample(labels: peerLabels(peer) + [("reason", $0.key.description)], value: Double($0.value))
                }
            })
        family(
            "vpnd_interface_drops_total", "counter", "Packets dropped that belong to no peer, by reason.",
            status.drops.sorted { $0.key.rawValue < $1.key.rawValue }.map {
                Sample(labels: interface + [("reason", $0.key.description)], value: Double($0.value))
            })
        family(
            "vpnd_transport_drops_total", "counter", "What the transport and its socket dropped or split, by reason.",
            status.transport.named.map { Sample(labels: interface + [("reason", $0.key)], value: Double($0.value)) })
        // The handshake counters behind `vpnd doctor`.
        family(
            "vpnd_peer_handshake_initiations_total", "counter", "Handshake initiations sent to the peer (retries included).",
            perPeer { Double($0.initiationsSent) })
        family(
            "vpnd_peer_handshake_responses_total", "counter",
            "Responses from the peer that completed one of our initiations (sessions established as initiator).",
            perPeer { Double($0.responsesReceived) })
        family(
            "vpnd_peer_handshake_failures_total", "counter",
            "Our initiations to the peer still unanswered when the retry timer fired (REKEY_TIMEOUT, 5 s plus jitter) or the round was given up.",
            perPeer { Double($0.initiationsUnanswered) })
        family(
            "vpnd_peer_handshake_initiations_answered_total", "counter",
            "Initiations from the peer that authenticated and were answered with a response.",
            perPeer { Double($0.initiationsAnswered) })
        family(
            "vpnd_unknown_initiator_initiations_total", "counter",
            "Initiations from a public key that is no configured peer, for the last few such keys.",
            status.unknownInitiators.map {
                Sample(labels: interface + [("public_key", KeyEncoding.encode($0.publicKey))], value: Double($0.initiations))
            })
        families += interfaceLoad(status, interface: interface, longestLoopNanoseconds: longestLoopNanoseconds)
        return families.map(\.text).joined()
    }

    /// The interface's load: the handshake thread's backlog and the data plane's loop time.
    static func interfaceLoad(
        _ status: DataPlaneStatus, interface: [(String, String)], longestLoopNanoseconds: UInt64?
    ) -> [Family] {
        let loop = status.loop
        var buckets: [Sample] = LoopTiming.bucketBounds.indices.map { i in
            Sample(
                labels: interface + [("le", seconds(LoopTiming.bucketBounds[i]))], value: Double(loop.cumulativeCount(i)),
                suffix: "_bucket")
        }
        buckets.append(Sample(labels: interface + [("le", "+Inf")], value: Double(loop.count), suffix: "_bucket"))
        return [
            Family(
                name: "vpnd_handshake_backlog", type: "gauge",
                help: "Handshake jobs queued for the handshake thread and not yet taken by it.",
                samples: [Sample(labels: interface, value: Double(status.handshakeBacklog))]),
            Family(
                name: "vpnd_dataplane_loop_seconds", type: "histogram",
                help: "Time one data-plane loop iteration takes, from the end of its wait to the next wait.",
                samples: buckets + [
                    Sample(labels: interface, value: Double(loop.totalNanoseconds) / 1e9, suffix: "_sum"),
                    Sample(labels: interface, value: Double(loop.count), suffix: "_count"),
                ]),
            Family(
                name: "vpnd_dataplane_loop_max_seconds", type: "gauge",
                help: "The longest data-plane loop iteration since the previous scrape.",
                samples: [
                    Sample(labels: interface, value: Double(longestLoopNanoseconds ?? loop.longestNanoseconds) / 1e9)
                ]),
        ]
    }

    /// `nanoseconds` as decimal seconds without an exponent: 10,000 is "0.00001", 2,500,000 "0.0025".
    static func seconds(_ nanoseconds: UInt64) -> String {
        let whole = nanoseconds / 1_000_000_000
        var fraction = String(nanoseconds % 1_000_000_000)
        fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
        while fraction.last == "0" { fraction.removeLast() }
        return fraction.isEmpty ? String(whole) : "\(whole).\(fraction)"
    }

    struct Sample {
        var labels: [(String, String)]
        var value: Double
        /// After the family's name: `_bucket`, `_sum`, `_count` in a histogram.
        var suffix = ""
    }

    struct Family {
        var name: String
        var type: String
        var help: String
        var samples: [Sample]

        var text: String {
            var out = "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples {
                let labels = sample.labels.map { "\($0.0)=\"\(MetricsFormatter.escape($0.1))\"" }.joined(separator: ",")
                let value = sample.value == sample.value.rounded() && abs(sample.value) < 1e15
                    ? String(Int64(sample.value)) : "\(sample.value)"
                out += "\(name)\(sample.suffix){\(labels)} \(value)\n"
            }
            return out
        }
    }

    /// A label value as the format escapes it: backslash, double quote and newline.
    static func escape(_ value: String) -> String {
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// Several daemons' expositions as one: each family once, its samples from every daemon.
    static func merge(_ texts: [String]) -> String {
        var order: [String] = []
        var headers: [String: String] = [:]
        var samples: [String: [String]] = [:]
        for text in texts {
            var current = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                if line.hasPrefix("# HELP ") {
                    current = String(line.dropFirst(7).prefix { $0 != " " })
                    if headers[current] == nil {
                        order.append(current)
                        headers[current] = String(line) + "\n"
                    }
                } else if line.hasPrefix("# TYPE ") {
                    if headers[current]?.contains("# TYPE") == false { headers[current]! += String(line) + "\n" }
                } else {
                    samples[current, default: []].append(String(line))
                }
            }
        }
        return order.map { name in headers[name]! + (samples[name] ?? []).map { $0 + "\n" }.joined() }.joined()
    }
}
