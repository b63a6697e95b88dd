// SPDX-License-Identifier: MIT
import ArgumentParser
import Logging
import Synchronization
import VPNBasics
import VPNLinux
import VPNCore
import VPNCrypto
import VPNDaemon

/// Static facts about a running daemon for `vpnd show`.
struct DaemonInfo: Sendable {
    var interfaceName: String
    var listenPort: UInt16?
    var mode: String
    var transport: String
    /// `Cipher`: chacha20poly1305 or aes256gcm.
    var cipher: String = TransportCipher.chaCha20Poly1305.rawValue
    /// Packet threads (`Threads`, or what `auto` chose).
    var threads: Int = 1
    /// The config file's absolute path (`vpnd peer` edits it); nil for vpnd-wg, which has none.
    var configPath: String? = nil
}

/// The daemon's control socket: a Unix stream socket, mode 0600, at `DIR/NAME.sock`. A client
/// sends one line (`text`, `json`, `dump`, `metrics`, `doctor` or `reload`) and reads the answer
/// until the daemon closes. The socket itself is VPNLinux's ``UnixStreamServer``; this is what it
/// answers.
final class ControlSocket: Sendable {
    static let defaultDirectory = "/run/vpnd"

    /// The control-socket directory: `$VPND_RUN_DIR`, else /run/vpnd, or, inside a named network
    /// namespace (`ip netns exec NAME`), /run/vpnd/netns/NAME: two daemons with the same Name in
    /// two namespaces of one host each have their socket and endpoint memory, and `vpnd show` in
    /// a namespace finds that namespace's daemons.
    /// The interfaces whose control sockets are in `directory`, sorted.
    /// A command's one request to one daemon: `interface`, or the only one running. Prints the
    /// command's one-line error and throws `ExitCode(failure)` when there is none, several, or
    /// it does not answer; returns the interface and the reply.
    static func ask(
        _ request: String, interface: String?, command: String, failure: Int32 = 1
    ) throws -> (name: String, reply: String) {
        let runDirectory = directory
        let names = interface.map { [$0] } ?? interfaces(in: runDirectory)
        guard names.count == 1, let name = names.first else {
            Posix.printError(
                names.isEmpty ? "vpnd \(command): no running vpnd found in \(runDirectory)\n"
                    : "vpnd \(command): \(names.count) vpnd run here (\(names.sorted().joined(separator: ", "))); name one\n")
            throw ExitCode(failure)
        }
        let path = runDirectory + "/" + name + ".sock"
        guard let reply = UnixStreamClient.exchange(path: path, request: request + "\n"), !reply.isEmpty else {
            let hint = Posix.canRead(runDirectory) ? "is it running?" : "run as root"
            Posix.printError("vpnd \(command): cannot reach vpnd for \(name) at \(path); \(hint)\n")
            throw ExitCode(failure)
        }
        return (name, reply)
    }

    static func interfaces(in directory: String) -> [String] {
        (Posix.directoryEntries(directory) ?? []).filter { $0.hasSuffix(".sock") }.map { String($0.dropLast(5)) }.sorted()
    }

    static var directory: String {
        if let dir = Posix.environment("VPND_RUN_DIR"), !dir.isEmpty { return dir }
        if let namespace = Posix.networkNamespaceName() { return defaultDirectory + "/netns/" + namespace }
        return defaultDirectory
    }

    var path: String { server.path }
    /// Answers `reload` (set once the daemon runs; vpnd-wg has none).
    var reloader: Reloader? {
        get { reloaderBox.withLock { $0 } }
        set { reloaderBox.withLock { $0 = newValue } }
    }
    private let reloaderBox = Mutex<Reloader?>(nil)
    private let server: UnixStreamServer
    private let info: DaemonInfo
    private let control: DataPlaneControl
    private let logger: Logger
    /// The peers' names for show and metrics (the Reloader replaces them).
    let names: PeerNames
    /// `MetricsListen`'s HTTP server, bound already; served from ``start()``.
    private let metricsServer: TCPRequestServer?

    init(
        directory: String, interfaceName: String, info: DaemonInfo, control: DataPlaneControl, logger: Logger,
        names: PeerNames = PeerNames(), metricsServer: TCPRequestServer? = nil
    ) throws {
        self.info = info
        self.control = control
        self.logger = logger
        self.names = names
        self.metricsServer = metricsServer
        let path = directory + "/" + interfaceName + ".sock"
        do throws(UnixSocketError) {
            server = try UnixStreamServer(path: path, directory: directory)
        } catch {
            switch error {
            case .noSocket(let reason): throw StartupError("control socket: \(reason)")
            case .inUse:
                // A socket left by a daemon that died is stale (nobody answers): it is replaced.
                throw StartupError(
                    "another vpnd already serves \(path): interface \(interfaceName) is in use; stop it or pick another Name")
            case .pathTooLong: throw StartupError("control socket path \(path) is too long; use a shorter --run-directory")
            case .cannotBind(let reason):
                throw StartupError("control socket \(path): \(reason); check that \(directory) is writable")
            }
        }
    }

    func start() {
        startMetricsServer()
        let started = server.start(threadName: "vpnd-control") { [info, control, self] request in
            if request == "config" { return (info.configPath ?? "none") + "\n" }
            if request == "reload" {
                guard let reloader = self.reloader else {
                    return "refused: \(info.interfaceName) has no config file to reload (vpnd-wg: use wg setconf)\n"
                }
                let (applied, message) = reloader.reload(trigger: "vpnd reload")
                return (applied ? "ok: " : "refused: ") + message + "\n"
            }
            if request == "metrics" {
                return self.metricsText() ?? "error: the data plane did not answer within 1 s\n"
            }
            guard let status = freshSnapshot(control, withinMilliseconds: 1000) else {
                return "error: the data plane did not answer within 1 s\n"
            }
            switch request {
            case "json": return StatusFormatter.json(info: info, status: status, names: self.names.all)
            case "dump": return StatusFormatter.dump(info: info, status: status, wallSeconds: wallClockNow().seconds)
            case "doctor": return Doctor.reply(info: info, status: status)
            default: return StatusFormatter.text(info: info, status: status, names: self.names.all)
            }
        }
        if !started { logger.error("control socket: cannot start its thread; vpnd show will not answer") }
    }

    /// The metrics now (`vpnd metrics`, `MetricsListen`); nil when the data plane does not answer.
    func metricsText() -> String? {
        guard let status = freshSnapshot(control, withinMilliseconds: 1000) else { return nil }
        return MetricsFormatter.text(
            info: info, status: status, wallSeconds: wallClockNow().seconds, names: names.all,
            longestLoopNanoseconds: control.takeLongestLoop())
    }

    private func startMetricsServer() {
        guard let metricsServer else { return }
        let url = "http://\(metricsServer.localEndpoint)/metrics"
        let handler = MetricsHTTP.handler { [self] in metricsText() }
        if metricsServer.start(threadName: "vpnd-metrics", limits: MetricsHTTP.limits, handler: handler) {
            logger.info("metrics served at \(url) (MetricsListen)")
            if !MetricsHTTP.isLoopback(metricsServer.localEndpoint) {
                logger.warning(
                    "MetricsListen \(metricsServer.localEndpoint) is not a loopback address: whoever reaches it reads the peers' keys, names and counters (no authentication); firewall it or use 127.0.0.1")
            }
        } else {
            logger.error("MetricsListen: cannot start its thread; \(url) will not answer")
        }
    }

    func stop() {
        metricsServer?.stop()
        server.stop()
    }

    /// Removes the socket file of a daemon that did not start.
    func discard() {
        metricsServer?.stop()
        server.discard()
    }
}

/// `vpnd show`'s text and JSON.
enum StatusFormatter {
    static func text(info: DaemonInfo, status: DataPlaneStatus, names: [Bytes32: String] = [:]) -> String {
        var out = "interface: \(info.interfaceName)\n"
        out += "  public key: \(publicKey(status))\n"
        if let port = status.listenPort ?? info.listenPort { out += "  listening port: \(port)\n" }
        out += "  mode: \(info.mode)\n  transport: \(info.transport)\n"
        if info.cipher != TransportCipher.chaCha20Poly1305.rawValue { out += "  cipher: \(info.cipher)\n" }
        if !status.drops.isEmpty { out += "  drops: \(dropText(status.drops))\n" }
        let transportDrops = status.transport.named.filter { $0.value > 0 }.map { "\($0.key) \($0.value)" }
        if !transportDrops.isEmpty { out += "  transport drops: \(transportDrops.joined(separator: ", "))\n" }
        if let tcp = status.tcp {
            out += "  tcp connections: \(tcp.open) open (\(tcp.authenticated) authenticated); "
            if info.listenPort != nil {
                out += "\(tcp.accepted) accepted, unauthenticated ones \(tcp.evicted) evicted and \(tcp.expired) expired, "
                out += "\(tcp.refusedFull) refused (all authenticated), \(tcp.refusedSourceCap) refused (per-source cap)\n"
            } else {
                out += "connected \(tcp.connects) time\(tcp.connects == 1 ? "" : "s")\n"
            }
        }
        for peer in status.peers {
            out += "\npeer: \(KeyEncoding.encode(peer.publicKey))\n"
            if let name = names[peer.publicKey] { out += "  name: \(name)\n" }
            out += "  endpoint: \(peer.endpoint.map { "\($0)" } ?? "(none)")\n"
            if let carrier = peer.carrier {
                let switches = peer.carrierSwitches.map { ", moved between UDP and TCP \($0) time\($0 == 1 ? "" : "s")" } ?? ""
                out += "  transport: \(carrier)\(switches)\n"
            }
            let allowed = peer.allowedIPs.map(\.description).joined(separator: ", ")
            out += "  allowed ips: \(allowed.isEmpty ? "(none)" : allowed)\n"
            if let latest = peer.latestHandshake {
                out += "  latest handshake: \(ago(status.now - latest)) ago\n"
            } else {
                out += "  latest handshake: (none)\n"
            }
            out += "  transfer: \(bytes(peer.receivedBytes)) received, \(bytes(peer.sentBytes)) sent"
            out += " (\(peer.receivedPackets) packets received, \(peer.sentPackets) sent)\n"
            let keepalive = peer.persistentKeepalive.components.seconds
            if keepalive > 0 { out += "  persistent keepalive: every \(keepalive) seconds\n" }
            if peer.pathMTU > 0 {
                let probes: String
                switch peer.echoesProbes {
                case true?: probes = " (found by path probes)"
                case false?: probes = " (the peer does not answer path probes)"
                case nil: probes = ""
                }
                out += "  path mtu: \(peer.pathMTU)\(probes)\n"
            }
            if !peer.drops.isEmpty { out += "  drops: \(dropText(peer.drops))\n" }
        }
        return out
    }

    static func json(info: DaemonInfo, status: DataPlaneStatus, names: [Bytes32: String] = [:]) -> String {
        var root: [String: JSONValue] = [
            "interface": .string(info.interfaceName), "public_key": .string(publicKey(status)),
            "mode": .string(info.mode), "transport": .string(info.transport), "cipher": .string(info.cipher),
            "threads": .integer(Int64(info.threads)),
            "drops": dropObject(status.drops),
            "transport_drops": .object(Dictionary(uniqueKeysWithValues: status.transport.named.map { ($0.key, .unsigned($0.value)) })),
        ]
        if let port = status.listenPort ?? info.listenPort { root["listen_port"] = .unsigned(UInt64(port)) }
        root["mtu"] = .integer(Int64(status.mtu))
        root["unknown_initiators"] = .array(status.unknownInitiators.map { stranger in
            .object([
                "public_key": .string(KeyEncoding.encode(stranger.publicKey)),
                "initiations": .unsigned(stranger.initiations), "endpoint": .string("\(stranger.source)"),
                "last_seen_seconds_ago": .double(Double((status.now - stranger.lastSeen).nanosecondsClamped) / 1e9),
            ])
        })
        if let tcp = status.tcp {
            root["tcp"] = .object([
                "open": .unsigned(UInt64(tcp.open)), "authenticated": .unsigned(UInt64(tcp.authenticated)),
                "accepted": .unsigned(tcp.accepted), "evicted": .unsigned(tcp.evicted), "expired": .unsigned(tcp.expired),
                "refused_full": .unsigned(tcp.refusedFull), "refused_source_cap": .unsigned(tcp.refusedSourceCap),
                "connects": .unsigned(tcp.connects),
            ])
        }
        root["peers"] = .array(status.peers.map { peer -> JSONValue in
            var entry: [String: JSONValue] = [
                "public_key": .string(KeyEncoding.encode(peer.publicKey)),
                "allowed_ips": .array(peer.allowedIPs.map { .string($0.description) }),
                "rx_bytes": .unsigned(peer.receivedBytes), "tx_bytes": .unsigned(peer.sentBytes),
                "rx_packets": .unsigned(peer.receivedPackets), "tx_packets": .unsigned(peer.sentPackets),
                "persistent_keepalive": .integer(peer.persistentKeepalive.components.seconds),
                "has_session": .bool(peer.hasSession),
                "drops": dropObject(peer.drops),
                "path_mtu": .integer(Int64(peer.pathMTU)),
                "handshakes": .unsigned(peer.handshakes),
                "cookie_replies_received": .unsigned(peer.cookieRepliesReceived),
                "endpoint_configured": .bool(peer.endpointConfigured),
                "handshake_initiations_sent": .unsigned(peer.initiationsSent),
                "handshake_responses_received": .unsigned(peer.responsesReceived),
                "handshake_initiations_unanswered": .unsigned(peer.initiationsUnanswered),
                "handshake_initiations_unanswered_in_a_row": .unsigned(peer.initiationsUnansweredInARow),
                "handshake_initiations_answered": .unsigned(peer.initiationsAnswered),
            ]
            entry["echoes_probes"] = peer.echoesProbes.map { .bool($0) } ?? .null
            entry["endpoint"] = peer.endpoint.map { .string("\($0)") } ?? .null
            // The carrier this peer is reached over now (Transport = auto), else the interface's.
            entry["transport"] = .string(peer.carrier?.description ?? info.transport)
            entry["transport_switches"] = peer.carrierSwitches.map { .unsigned($0) } ?? .null
            entry["name"] = names[peer.publicKey].map { .string($0) } ?? .null
            if let latest = peer.latestHandshake {
                entry["latest_handshake_seconds_ago"] = .double(Double((status.now - latest).nanosecondsClamped) / 1e9)
            } else {
                entry["latest_handshake_seconds_ago"] = .null
            }
            return .object(entry)
        })
        return JSONValue.object(root).prettyText + "\n"
    }

    /// `wg show NAME dump`'s lines: the interface, then one line per peer, tab-separated. The
    /// private and pre-shared keys read `(hidden)` (vpnd show never prints a secret).
    static func dump(info: DaemonInfo, status: DataPlaneStatus, wallSeconds: Int64) -> String {
        var out = "(hidden)\t\(publicKey(status))\t\(status.listenPort ?? 0)\t"
        out += status.firewallMark == 0 ? "off\n" : "0x\(String(status.firewallMark, radix: 16))\n"
        for peer in status.peers {
            let allowed = peer.allowedIPs.map(\.description).joined(separator: ",")
            let latest = peer.latestHandshake.map { wallSeconds - (status.now - $0).components.seconds } ?? 0
            let keepalive = peer.persistentKeepalive.components.seconds
            out += [
                KeyEncoding.encode(peer.publicKey), peer.presharedKey == nil ? "(none)" : "(hidden)",
                peer.endpoint.map { "\($0)" } ?? "(none)", allowed.isEmpty ? "(none)" : allowed, String(latest),
                String(peer.receivedBytes), String(peer.sentBytes), keepalive == 0 ? "off" : String(keepalive),
            ].joined(separator: "\t")
            out += "\n"
        }
        return out
    }

    /// Our public key now (it follows `wg set private-key`), "(none)" before one is set.
    static func publicKey(_ status: DataPlaneStatus) -> String {
        status.tunnel.privateKey == nil ? "(none)" : KeyEncoding.encode(status.publicKey)
    }

    static func dropObject(_ drops: [DropReason: UInt64]) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: drops.map { ($0.key.description, .unsigned($0.value)) }))
    }

    static func dropText(_ drops: [DropReason: UInt64]) -> String {
        drops.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    static func ago(_ duration: Duration) -> String {
        let seconds = max(0, duration.components.seconds)
        if seconds < 60 { return "\(seconds) second\(seconds == 1 ? "" : "s")" }
        let minutes = seconds / 60
        return "\(minutes) minute\(minutes == 1 ? "" : "s"), \(seconds % 60) seconds"
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : Posix.twoDecimals(value) + " " + units[unit]
    }
}

/// Asks the data plane for a status snapshot and waits up to `milliseconds` for it (control
/// threads only: it sleeps).
func freshSnapshot(_ control: DataPlaneControl, withinMilliseconds milliseconds: Int) -> DataPlaneStatus? {
    let generation = control.requestSnapshot()
    for _ in 0..<max(1, milliseconds / 5) {
        if let fresh = control.snapshot(newerThan: generation) { return fresh }
        Posix.sleep(milliseconds: 5)
    }
    return nil
}
