// SPDX-License-Identifier: MIT
import VPNBasics
import VPNLinux

/// Configures the new interface through rtnetlink: MTU, addresses, link up, routes, bridge.
enum InterfaceSetup {
    static func configure(
        device: TunDevice, netlink: Netlink, mtu: Int, addresses: [IPPrefix], routes: [IPPrefix], bridge: String?,
        placement: RoutePlacement = .main
    ) throws {
        try netlink.setMTU(mtu, on: device.name)
        for address in addresses {
            guard let prefix = NetlinkPrefix(bytes: address.address.bytes, length: Int(address.length)) else { continue }
            try netlink.addAddress(prefix, on: device.name)
        }
        if let bridge {
            try netlink.setMaster(of: device.name, to: bridge)
        }
        try netlink.setLink(device.name, up: true)
        for route in routesToAdd(routes, addresses: addresses, placement: placement) {
            guard let prefix = NetlinkPrefix(bytes: route.address.bytes, length: Int(route.length)) else { continue }
            try netlink.addRoute(to: prefix.network, device: device.name, table: placement.tableNumber)
        }
    }

    /// The AllowedIPs prefixes that need a route where `placement` (`Table`) puts them, without
    /// duplicates:
    /// - `Table = off`: none;
    /// - `Table = auto` (the main table): each prefix not already covered by the subnet of one of
    ///   the interface's own addresses (the kernel adds that route itself), and not a default
    ///   route (0.0.0.0/0 and ::/0 get the full tunnel's policy routing instead: ``HostRouting``);
    /// - `Table = N`: every prefix, default routes included, as wg-quick adds them; in the main
    ///   table (`Table = main`) still none that an address's subnet covers.
    static func routesToAdd(_ routes: [IPPrefix], addresses: [IPPrefix], placement: RoutePlacement = .main) -> [IPPrefix] {
        if placement == .none { return [] }
        let inMain = placement.tableNumber == RouteNetlink.mainTable
        var out: [IPPrefix] = []
        var seen = Set<IPPrefix>()
        for route in routes.map(\.masked) {
            if route.length == 0 && placement == .main { continue }
            let covered = inMain && addresses.contains { address in
                address.address.isIPv4 == route.address.isIPv4 && address.length <= route.length
                    && address.masked.contains(route.address)
            }
            if covered || !seen.insert(route).inserted { continue }
            out.append(route)
        }
        return out
    }
}
