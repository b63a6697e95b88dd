// SPDX-License-Identifier: MIT
import Logging
import Synchronization
import VPNBasics
import VPNCore
import VPNDaemon
import VPNLinux

/// Applies a configuration change (a UAPI `set=1`, or the difference a reload found) to the
/// running daemon, all or nothing: the data plane checks it whole (nothing changes yet), the
/// kernel routes it needs are added, it is applied in one step on the data-plane thread, and the
/// routes it no longer needs are removed. A refusal at any step undoes the routes already added
/// and leaves the running configuration as it was. One change at a time (wg and reload alike).
final class ConfigurationChanger: Sendable {
    /// What the changer needs to know of the interface.
    struct Interface: Sendable {
        var name: String
        /// tun: AllowedIPs get kernel routes (as at start-up); tap and vpnd-wg: none.
        var managesRoutes: Bool
        /// The interface's own addresses (their subnets need no route).
        var addresses: [IPPrefix]
        /// Where the routes go (`Table`): the main table, none, or a table of its own.
        var placement: RoutePlacement = .main
        /// The underlay's mark that the full tunnel's rules depend on (nil: no full tunnel): a
        /// `wg set fwmark` to another one is refused.
        var fixedMark: UInt32? = nil
        /// With a kill switch: the peer endpoints its table lets out (nil: no kill switch). A
        /// `wg set` to another endpoint, or another listen port, is refused: its packets would be
        /// dropped.
        var killSwitchEndpoints: Set<Endpoint>? = nil
    }

    private let interface: Mutex<Interface>
    private let control: DataPlaneControl
    let routes: RouteTable?
    private let logger: Logger
    /// Held for the whole of one change.
    private let serial = Mutex<Void>(())

    init(interface: Interface, control: DataPlaneControl, routes: RouteTable?, logger: Logger) {
        self.interface = Mutex(interface)
        self.control = control
        self.routes = routes
        self.logger = logger
    }

    /// The interface's addresses changed (a reload): their subnets need no route from now on.
    func setAddresses(_ addresses: [IPPrefix]) {
        interface.withLock { $0.addresses = addresses }
    }

    /// Applies `request`, or refuses it whole.
    func apply(_ request: UAPISetRequest) -> Result<TunnelReconfiguration, UAPIError> {
        serial.withLock { _ in applyAlone(request) }
    }

    private func applyAlone(_ request: UAPISetRequest) -> Result<TunnelReconfiguration, UAPIError> {
        let current = interface.withLock { $0 }
        let name = current.name
        if let mark = request.fwmark, let fixed = current.fixedMark, mark != fixed {
            return .failure(UAPIError(
                errno: UAPIError.invalid,
                "fwmark \(mark): the full tunnel's policy routing sends every packet without mark 0x\(String(fixed, radix: 16)) into the tunnel, so vpnd's own would loop; set FwMark in the config and restart instead"))
        }
        if let allowed = current.killSwitchEndpoints {
            if let port = request.listenPort {
                return .failure(UAPIError(
                    errno: UAPIError.invalid,
                    "listen_port \(port): the kill switch lets out only the port vpnd started with; change ListenPort in the config and restart vpnd"))
            }
            for peer in request.peers where !peer.remove {
                if let endpoint = peer.endpoint, !allowed.contains(endpoint) {
                    return .failure(UAPIError(
                        errno: UAPIError.invalid,
                        "endpoint \(endpoint): the kill switch lets out only the endpoints vpnd started with (\(allowed.map(\.description).sorted().joined(separator: ", "))); set it in the config and restart vpnd"))
                }
            }
        }
        // 1. Checked whole by the data plane (nothing changes yet).
        let preview: TunnelReconfiguration
        switch exchange(request, dryRun: true) {
        case .success(let value): preview = value
        case .failure(let error): return .failure(error)
        }
        // 2. The new routes, before any packet can need them.
        let (add, remove) = routeChanges(preview, current)
        var added: [IPPrefix] = []
        if let routes {
            for prefix in add {
                do throws(IOError) {
                    try routes.add(prefix, device: name, table: current.placement.tableNumber)
                    added.append(prefix)
                } catch {
                    for prefix in added { try? routes.remove(prefix, device: name, table: current.placement.tableNumber) }
                    return .failure(UAPIError(
                        errno: error.errno == 0 ? UAPIError.io : error.errno,
                        "route to \(prefix): \(error.reason)\(error.errno == 1 ? "; changing routes needs CAP_NET_ADMIN" : "")"))
                }
            }
        }
        // 3. The change itself, on the data-plane thread.
        let applied = exchange(request, dryRun: false)
        guard case .success = applied else {
            for prefix in added { try? routes?.remove(prefix, device: name, table: current.placement.tableNumber) }
            return applied
        }
        // 4. The routes no longer needed.
        for prefix in remove {
            do throws(IOError) { try routes?.remove(prefix, device: name, table: current.placement.tableNumber) } catch {
                logger.warning("\(name): removing the route to \(prefix): \(error)")
            }
        }
        return applied
    }

    /// Routes to add and to remove for a change of AllowedIPs (tun only, as at start-up, where
    /// `Table` puts them).
    private func routeChanges(_ preview: TunnelReconfiguration, _ current: Interface) -> (add: [IPPrefix], remove: [IPPrefix]) {
        guard current.managesRoutes else { return ([], []) }
        let before = InterfaceSetup.routesToAdd(preview.allowedIPsBefore, addresses: current.addresses, placement: current.placement)
        let after = InterfaceSetup.routesToAdd(preview.allowedIPsAfter, addresses: current.addresses, placement: current.placement)
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
}

/// The kernel routes vpnd owns for AllowedIPs, changed at runtime (rtnetlink). Its own netlink
/// socket, used by one change at a time (the lock only proves it).
final class RouteTable: Sendable {
    private let netlink: Mutex<Netlink>

    init(netlink: sending Netlink) { self.netlink = Mutex(netlink) }

    func add(_ prefix: IPPrefix, device: String, table: UInt32 = RouteNetlink.mainTable) throws(IOError) {
        guard let route = NetlinkPrefix(bytes: prefix.address.bytes, length: Int(prefix.length)) else { return }
        try netlink.withLock { (netlink) throws(IOError) in try netlink.addRoute(to: route.network, device: device, table: table) }
    }

    func remove(_ prefix: IPPrefix, device: String, table: UInt32 = RouteNetlink.mainTable) throws(IOError) {
        guard let route = NetlinkPrefix(bytes: prefix.address.bytes, length: Int(prefix.length)) else { return }
        try netlink.withLock { (netlink) throws(IOError) in try netlink.deleteRoute(to: route.network, device: device, table: table) }
    }

    /// Sets the interface's MTU.
    func setMTU(_ mtu: Int, device: String) throws(IOError) {
        try netlink.withLock { (netlink) throws(IOError) in try netlink.setMTU(mtu, on: device) }
    }

    /// Adds (or removes) an address of the interface.
    func changeAddress(_ address: IPPrefix, add: Bool, device: String) throws(IOError) {
        guard let prefix = NetlinkPrefix(bytes: address.address.bytes, length: Int(address.length)) else { return }
        try netlink.withLock { (netlink) throws(IOError) in
            if add { try netlink.addAddress(prefix, on: device) } else { try netlink.deleteAddress(prefix, on: device) }
        }
    }
}
