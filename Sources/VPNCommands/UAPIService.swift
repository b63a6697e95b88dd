// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon
import VPNLinux

/// WireGuard's cross-platform configuration protocol (wireguard.com/xplatform) on
/// `/var/run/wireguard/NAME.sock`, so that `wg`, `wg-quick` and the tools built on them see and
/// change a running vpnd. `get=1` answers from a fresh status snapshot; `set=1` is read whole,
/// parsed and handed to the ``ConfigurationChanger`` (all or nothing).
final class UAPIService: Sendable {
    /// The directory the protocol fixes; `VPND_WG_SOCKET_DIR` moves it (unit tests only).
    static var directory: String {
        if let dir = Posix.environment("VPND_WG_SOCKET_DIR"), !dir.isEmpty { return dir }
        return "/var/run/wireguard"
    }

    /// What the service needs to know of the interface besides the snapshot.
    struct Interface: Sendable {
        var name: String
    }

    private let server: UnixStreamServer
    private let interface: Interface
    private let control: DataPlaneControl
    private let changer: ConfigurationChanger
    private let logger: Logger

    /// Opens the socket, or returns nil (with one info line) when a live one of the same name
    /// exists: another daemon of this name, say in another network namespace of this host.
    static func open(
        interface: Interface, control: DataPlaneControl, changer: ConfigurationChanger, logger: Logger,
        required: Bool = false
    ) -> UAPIService? {
        let directory = directory
        let path = directory + "/" + interface.name + ".sock"
        do throws(UnixSocketError) {
            let server = try UnixStreamServer(path: path, directory: directory)
            return UAPIService(server: server, interface: interface, control: control, changer: changer, logger: logger)
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

    private init(
        server: UnixStreamServer, interface: Interface, control: DataPlaneControl, changer: ConfigurationChanger,
        logger: Logger
    ) {
        self.server = server
        self.interface = interface
        self.control = control
        self.changer = changer
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
                refuse(UAPIError(errno: UAPIError.invalid, "unknown operation \(UAPIError.printable(operation)); expected get=1 or set=1"), connection)
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
        return changer.apply(request)
    }
}

