// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux

/// WireGuard's cross-platform configuration protocol (wireguard.com/xplatform) on
/// `/var/run/wireguard/NAME.sock`, so that `wg`, `wg-quick` and the tools built on them see and
/// change a running vpnd. `get=1` answers from a fresh status snapshot; `set=1` is read whole,
/// parsed, checked by the data plane, its kernel routes added, applied on the data-plane thread,
/// and then the routes it no longer needs removed: a refusal at any step leaves the running
/// configuration as it was.
final class UAPIService: Sendable {
    /// The directory the protocol fixes; `VPND_WG_SOCKET_DIR` moves it (unit tests only).
    static var directory: String {
        if let dir = Posix.environment("VPND_WG_SOCKET_DIR"), !dir.isEmpty { return dir }
        return "/var/run/wireguard"
    }

    /// What the service needs to know of the interface besides the snapshot.
    struct Interface: Sendable {
        var name: String
        var listenPort: UInt16?
        /// tun: AllowedIPs get kernel routes (as at start-up); tap: none.
        var managesRoutes: Bool
        /// The interface's own addresses (their subnets need no route).
        var addresses: [IPPrefix]
    }

    private let server: UnixStreamServer
    private let interface: Interface
    private let control: DataPlaneControl
    private let routes: RouteTable?
    private let logger: Logger

    /// Opens the socket, or returns nil (with one info line) when a live one of the same name
    /// exists: another daemon of this name, say in another network namespace of this host.
    static func open(
        interface: Interface, control: DataPlaneControl, routes: RouteTable?, logger: Logger, required: Bool = false
    ) -> UAPIService? {
        let directory = directory
        let path = directory + "/" + interface.name + ".sock"
        do throws(UnixSocketError) {
            let server = try UnixStreamServer(path: path, directory: directory)
            return UAPIService(server: server, interface: interface, control: control, routes: routes, logger: logger)
        } catch {
            switch error {
            case .inUse:
                if required { return nil }  // the caller says it
                logger.info(
                    "\(path) is served by another daemon named \(interface.name) (another network namespace?); wg cannot reach this one, vpnd show can")
            case .noSocket(let reason), .cannotBind(let reason):
                logger.warning("wg socket \(path): \(reason); wg cannot reach this interface (check that \(directory) is writable)")
            case .pathTooLong:
                logger.warning("wg socket \(path): the path is too long; wg cannot reach this interface")
            }
            return nil
        }
    }

    private init(server: UnixStreamServer, interface: Interface, control: DataPlaneControl, routes: RouteTable?, logger: Logger) {
        self.server = server
        self.interface = interface
        self.control = control
        self.routes = routes
        self.logger = logger
    }

    var path: String { server.path }

    func start() {
        let started = server.serveConnections(threadName: "vpnd-uapi") { [self] connection in
            serve(connection)
        }
        if !started { logger.error("wg socket: cannot start its thread; wg will not answer") }
    }

    func stop() { server.stop() }

    /// Removes the socket file of a daemon that did not start.
    func discard() { server.discard() }

    // MARK: - The protocol

    private func serve(_ connection: UnixStreamConnection) {
        while case .line(let operation) = connection.readLine(maximumLength: UAPISetRequest.maximumLineLength) {
            switch operation {
            case "get=1":
                guard case .line("") = connection.readLine(maximumLength: UAPISetRequest.maximumLineLength) else {
                    refuse(UAPIError(errno: UAPIError.invalid, "get=1 must be followed by a blank line"), connection)
                    return
                }
                connection.write(get())
            case "set=1":
                switch readSetBody(connection) {
                case .success(let text):
                    let answer = set(text)
                    connection.write(answer)
                case .failure(let error):
                    refuse(error, connection)
                    return
                case nil:
                    return  // the client went away mid-request: nothing was applied
                }
            default:
                refuse(UAPIError(errno: UAPIError.invalid, "unknown operation \(Self.printable(operation)); expected get=1 or set=1"), connection)
                return
            }
        }
    }

    /// The lines of a `set=1` up to the blank line, each with its newline; nil when the stream
    /// ended or stalled first.
    private func readSetBody(_ connection: UnixStreamConnection) -> Result<String, UAPIError>? {
        var text = ""
        while true {
            switch connection.readLine(maximumLength: UAPISetRequest.maximumLineLength) {
            case .line(""):
                return .success(text)
            case .line(let line):
                text += line
                text += "\n"
                if text.utf8.count > UAPISetRequest.maximumSize {
                    return .failure(UAPIError(
                        errno: UAPIError.invalid, "set request longer than \(UAPISetRequest.maximumSize) bytes"))
                }
            case .tooLong:
                return .failure(UAPIError(
                    errno: UAPIError.invalid, "a set line longer than \(UAPISetRequest.maximumLineLength) bytes"))
            case .end, .timedOut:
                return nil
            }
        }
    }

    private func refuse(_ error: UAPIError, _ connection: UnixStreamConnection) {
        logger.warning("wg request on \(interface.name) refused: \(error.message)")
        connection.write(error.statusLine + "\n\n")
    }

    private func get() -> String {
        guard let status = freshSnapshot(control, withinMilliseconds: 1000) else {
            logger.warning("wg get on \(interface.name): the data plane did not answer within 1 s")
            return UAPIError(errno: UAPIError.io, "").statusLine + "\n\n"
        }
        let wall = wallClockNow()
        let wallNanoseconds = Int128(wall.seconds) * 1_000_000_000 + Int128(wall.nanoseconds)
        let peers = status.peers.map { peer -> UAPIDevice.Peer in
            let handshake = peer.latestHandshake.map { latest -> (seconds: Int64, nanoseconds: Int64) in
                let at = wallNanoseconds - Int128((status.now - latest).nanosecondsClamped)
                return (Int64(at / 1_000_000_000), Int64(at % 1_000_000_000))
            }
            return UAPIDevice.Peer(
                publicKey: peer.publicKey, presharedKey: peer.presharedKey, endpoint: peer.endpoint,
                lastHandshake: handshake, receivedBytes: peer.receivedBytes, sentBytes: peer.sentBytes,
                persistentKeepalive: UInt16(clamping: peer.persistentKeepalive.components.seconds),
                allowedIPs: peer.allowedIPs)
        }
        return UAPIDevice(
            privateKey: status.tunnel.privateKey, listenPort: status.listenPort, fwmark: status.firewallMark, peers: peers
        ).getResponse
    }

    private func set(_ text: String) -> String {
        let started = BootClock().now()
        let result = apply(text)
        switch result {
        case .success(let change):
            let took = Double((BootClock().now() - started).nanosecondsClamped) / 1e6
            if !change.isEmpty {
                logger.info(
                    "wg set on \(interface.name): \(change.added.count) peer(s) added, \(change.removed.count) removed, \(change.changed.count) changed\(change.privateKeyChanged ? ", new private key (sessions dropped)" : "") in \(Posix.twoDecimals(took)) ms")
            }
            return "errno=0\n\n"
        case .failure(let error):
            logger.warning("wg set on \(interface.name) refused, nothing changed: \(error.message)")
            return error.statusLine + "\n\n"
        }
    }

    private func apply(_ text: String) -> Result<TunnelReconfiguration, UAPIError> {
        let request: UAPISetRequest
        do throws(UAPIError) { request = try UAPISetRequest.parse(text) } catch { return .failure(error) }
        // 1. Checked whole by the data plane (nothing changes yet).
        let preview: TunnelReconfiguration
        switch exchange(request, dryRun: true) {
        case .success(let value): preview = value
        case .failure(let error): return .failure(error)
        }
        // 2. The new routes, before any packet can need them.
        let (add, remove) = routeChanges(preview)
        var added: [IPPrefix] = []
        if let routes {
            for prefix in add {
                do throws(IOError) {
                    try routes.add(prefix, device: interface.name)
                    added.append(prefix)
                } catch {
                    for prefix in added { try? routes.remove(prefix, device: interface.name) }
                    return .failure(UAPIError(
                        errno: error.errno == 0 ? UAPIError.io : error.errno,
                        "route to \(prefix): \(error.reason)\(error.errno == 1 ? "; changing routes needs CAP_NET_ADMIN" : "")"))
                }
            }
        }
        // 3. The change itself, on the data-plane thread.
        let applied = exchange(request, dryRun: false)
        guard case .success = applied else {
            for prefix in added { try? routes?.remove(prefix, device: interface.name) }
            return applied
        }
        // 4. The routes no longer needed.
        for prefix in remove {
            do throws(IOError) { try routes?.remove(prefix, device: interface.name) } catch {
                logger.warning("wg set on \(interface.name): removing the route to \(prefix): \(error)")
            }
        }
        return applied
    }

    /// Routes to add and to remove for a change of AllowedIPs (tun only, as at start-up).
    private func routeChanges(_ preview: TunnelReconfiguration) -> (add: [IPPrefix], remove: [IPPrefix]) {
        guard interface.managesRoutes else { return ([], []) }
        let before = InterfaceSetup.routesToAdd(preview.allowedIPsBefore, addresses: interface.addresses)
        let after = InterfaceSetup.routesToAdd(preview.allowedIPsAfter, addresses: interface.addresses)
        let had = Set(before), has = Set(after)
        return (after.filter { !had.contains($0) }, before.filter { !has.contains($0) })
    }

    /// Hands `request` to the data plane and waits for its answer (up to 5 s).
    private func exchange(_ request: UAPISetRequest, dryRun: Bool) -> Result<TunnelReconfiguration, UAPIError> {
        let ticket = control.requestReconfiguration(request, dryRun: dryRun)
        for _ in 0..<5000 {
            if let result = control.reconfigurationResult(ticket) { return result }
            Posix.sleep(milliseconds: 1)
        }
        return .failure(UAPIError(errno: UAPIError.io, "the data plane did not answer within 5 s"))
    }

    static func printable(_ text: String) -> String {
        let shown = text.unicodeScalars.prefix(40).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : String($0) }.joined()
        return "\"" + shown + (text.unicodeScalars.count > 40 ? "…" : "") + "\""
    }
}

/// The kernel routes vpnd owns for AllowedIPs, changed at runtime (rtnetlink).
/// Its own netlink socket, used by the wg socket's thread alone (the lock only proves it).
final class RouteTable: Sendable {
    private let netlink: Mutex<Netlink>

    init(netlink: sending Netlink) { self.netlink = Mutex(netlink) }

    func add(_ prefix: IPPrefix, device: String) throws(IOError) {
        guard let route = NetlinkPrefix(bytes: prefix.address.bytes, length: Int(prefix.length)) else { return }
        try netlink.withLock { (netlink) throws(IOError) in try netlink.addRoute(to: route.network, device: device) }
    }

    func remove(_ prefix: IPPrefix, device: String) throws(IOError) {
        guard let route = NetlinkPrefix(bytes: prefix.address.bytes, length: Int(prefix.length)) else { return }
        try netlink.withLock { (netlink) throws(IOError) in try netlink.deleteRoute(to: route.network, device: device) }
    }
}
