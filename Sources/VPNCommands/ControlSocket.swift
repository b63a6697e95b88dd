// SPDX-License-Identifier: MIT
import Glibc
import Logging
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon

/// Static facts about a running daemon for `vpnd show`.
struct DaemonInfo: Sendable {
    var interfaceName: String
    var publicKey: String
    var listenPort: UInt16?
    var mode: String
    var transport: String
}

/// The daemon's control socket: a Unix stream socket, mode 0600, at `DIR/NAME.sock`. A client
/// sends one line (`text` or `json`) and reads the status until the daemon closes.
final class ControlSocket: @unchecked Sendable {
    // The listening fd is written in init and closed in stop(); the accept thread only reads it.
    static let defaultDirectory = "/run/vpnd"

    /// The control-socket directory: `$VPND_RUN_DIR`, else /run/vpnd.
    static var directory: String {
        if let dir = Posix.environment("VPND_RUN_DIR"), !dir.isEmpty { return dir }
        return defaultDirectory
    }

    let path: String
    private let fd: Int32
    private let info: DaemonInfo
    private let control: DataPlaneControl
    private let clock: any VPNBasics.Clock & Sendable
    private let logger: Logger
    private let stopped = Semaphore()

    init(
        directory: String, interfaceName: String, info: DaemonInfo, control: DataPlaneControl,
        clock: any VPNBasics.Clock & Sendable, logger: Logger
    ) throws {
        self.info = info
        self.control = control
        self.clock = clock
        self.logger = logger
        path = directory + "/" + interfaceName + ".sock"
        mkdir(directory, 0o700)
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard socketFD >= 0 else { throw StartupError("control socket: \(String(cString: strerror(errno)))") }
        fd = socketFD
        // A socket left by a daemon that died is stale if nobody answers on it.
        if ControlSocket.connect(path: path) != nil {
            close(fd)
            throw StartupError("another vpnd already serves \(path): interface \(interfaceName) is in use; stop it or pick another Name")
        }
        unlink(path)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw StartupError("control socket path \(path) is too long; use a shorter --run-directory")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        guard Self.bindPrivately(fd, address: &address) == 0, listen(fd, 8) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw StartupError("control socket \(path): \(reason); check that \(directory) is writable")
        }
    }

    /// Binds `fd` to `address` with the socket file created mode 0600 by the kernel itself
    /// (umask 0177 around `bind`: Linux gives a socket 0777 less the umask), so there is no
    /// `chmod` on a path in a directory another account may own afterwards. Nothing else runs
    /// yet that could change the process-wide umask meanwhile (the control socket is made on the
    /// main thread before any other thread starts). Returns 0, or -1 with `errno` set.
    static func bindPrivately(_ fd: Int32, address: inout sockaddr_un) -> Int32 {
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindError = errno
        umask(previousMask)
        errno = bindError
        return bound
    }

    func start() {
        let started = startThread(name: "vpnd-control") { [self] in
            acceptLoop()
            stopped.signal()
        }
        if !started { logger.error("control socket: cannot start its thread; vpnd show will not answer") }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        unlink(path)
        _ = stopped.wait(seconds: 2)
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            serve(client)
            close(client)
        }
    }

    private func serve(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8](repeating: 0, count: 64)
        let count = read(client, &request, request.count)
        let line = count > 0 ? trimmed(String(decoding: request[0..<count], as: UTF8.self)) : ""
        let status = freshSnapshot(control, withinMilliseconds: 1000)
        let reply: String
        if let status {
            reply = line == "json" ? StatusFormatter.json(info: info, status: status)
                : StatusFormatter.text(info: info, status: status)
        } else {
            reply = "error: the data plane did not answer within 1 s\n"
        }
        var bytes = Array(reply.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(client, $0.baseAddress! + offset, $0.count - offset) }
            if written <= 0 { break }
            offset += written
        }
    }

    private func trimmed(_ text: String) -> String {
        String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// Connects to a control socket; nil when nothing listens there.
    static func connect(path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            return nil
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if result != 0 {
            close(fd)
            return nil
        }
        return fd
    }
}

/// `vpnd show`'s text and JSON.
enum StatusFormatter {
    static func text(info: DaemonInfo, status: DataPlaneStatus) -> String {
        var out = "interface: \(info.interfaceName)\n"
        out += "  public key: \(info.publicKey)\n"
        if let port = info.listenPort { out += "  listening port: \(port)\n" }
        out += "  mode: \(info.mode)\n  transport: \(info.transport)\n"
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
            out += "  endpoint: \(peer.endpoint.map { "\($0)" } ?? "(none)")\n"
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

    static func json(info: DaemonInfo, status: DataPlaneStatus) -> String {
        var root: [String: JSONValue] = [
            "interface": .string(info.interfaceName), "public_key": .string(info.publicKey),
            "mode": .string(info.mode), "transport": .string(info.transport),
            "drops": dropObject(status.drops),
            "transport_drops": .object(Dictionary(uniqueKeysWithValues: status.transport.named.map { ($0.key, .unsigned($0.value)) })),
        ]
        if let port = info.listenPort { root["listen_port"] = .unsigned(UInt64(port)) }
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
            ]
            entry["echoes_probes"] = peer.echoesProbes.map { .bool($0) } ?? .null
            entry["endpoint"] = peer.endpoint.map { .string("\($0)") } ?? .null
            if let latest = peer.latestHandshake {
                entry["latest_handshake_seconds_ago"] = .double(Double((status.now - latest).nanosecondsClamped) / 1e9)
            } else {
                entry["latest_handshake_seconds_ago"] = .null
            }
            return .object(entry)
        })
        return JSONValue.object(root).prettyText + "\n"
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
        usleep(5000)
    }
    return nil
}
