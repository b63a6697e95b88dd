// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics

/// One route of a routing table as the kernel reports it, for deciding which subnets are directly
/// connected (the kill switch's `AllowLAN`).
public struct KernelRoute: Sendable, Hashable {
    /// The destination prefix (0.0.0.0/0 or ::/0 for a default route).
    public var destination: NetlinkPrefix
    /// The output interface's index; 0 when the route names none (a multipath route).
    public var interfaceIndex: Int32
    /// RT_SCOPE_*: 0 universe, 253 link, 254 host.
    public var scope: UInt8
    /// RTN_*: 1 unicast; local, broadcast, unreachable and the rest are other types.
    public var type: UInt8
    /// The route goes through a gateway (RTA_GATEWAY, or a multipath route's next hops).
    public var hasGateway: Bool

    public init(destination: NetlinkPrefix, interfaceIndex: Int32, scope: UInt8, type: UInt8, hasGateway: Bool) {
        self.destination = destination
        self.interfaceIndex = interfaceIndex
        self.scope = scope
        self.type = type
        self.hasGateway = hasGateway
    }

    /// RT_SCOPE_LINK.
    public static let scopeLink: UInt8 = 253
    /// RTN_UNICAST.
    public static let unicast: UInt8 = 1
}

extension Netlink {
    /// Every IPv4 and IPv6 route of `table` (a dump: RTM_GETROUTE with NLM_F_DUMP).
    public func routes(inTable table: UInt32 = RouteNetlink.mainTable) throws(IOError) -> [KernelRoute] {
        var result: [KernelRoute] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            var message = NetlinkMessage(type: RouteNetlink.getRoute, flags: RouteNetlink.request | RouteNetlink.dump)
            message.append(bytes: [family, 0, 0, 0, 0, 0, 0, 0])
            message.append(UInt32(0))
            let subject = family == UInt8(AF_INET) ? "IPv4 routes" : "IPv6 routes"
            for reply in try transact(&message, subject: subject, device: "") where reply.type == RouteNetlink.newRoute {
                let p = reply.payload
                guard p.count >= 12 else { continue }
                let attributes = NetlinkAttributes(p, from: 12)
                let routeTable = attributes[RouteNetlink.rtaTable].map { $0.load32(at: 0) } ?? UInt32(p[4])
                guard routeTable == table else { continue }
                let bytes = attributes[RouteNetlink.rtaDst] ?? [UInt8](repeating: 0, count: p[0] == UInt8(AF_INET) ? 4 : 16)
                guard let prefix = NetlinkPrefix(bytes: bytes, length: Int(p[1])) else { continue }
                let index = attributes[RouteNetlink.rtaOIF].map { Int32(bitPattern: $0.load32(at: 0)) } ?? 0
                let gateway = attributes[Netlink.rtaGateway] != nil || attributes[Netlink.rtaMultipath] != nil
                result.append(KernelRoute(destination: prefix, interfaceIndex: index, scope: p[6], type: p[7], hasGateway: gateway))
            }
        }
        return result
    }

    static let rtaGateway: UInt16 = 5
    static let rtaMultipath: UInt16 = 9
}
