// SPDX-License-Identifier: MIT
import Glibc
import SystemPackage
import VPNBasics

/// An rtnetlink (`NETLINK_ROUTE`) socket that configures interfaces: link up/down, MTU, addresses,
/// routes, bridge ports, link deletion.
///
/// Every change waits for the kernel's acknowledgement; a refusal becomes an ``IOError`` naming
/// the request, its subject and a hint: "netlink RTM_NEWADDR 10.8.0.1/24 on vpnd0: file exists
/// (EEXIST); the address is already configured". The socket acts in the network namespace of the
/// thread that created it. Not thread-safe; for the control plane, never the data path.
public final class Netlink {
    private let fd: Int32
    private var sequence: UInt32 = 0
    private let receiveBuffer: UnsafeMutableRawBufferPointer

    /// Opens the socket. The corresponding C call is `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)`.
    public init() throws(IOError) {
        switch Syscall.retrying({ socket(AF_NETLINK, Int32(SOCK_RAW.rawValue | SOCK_CLOEXEC.rawValue), RouteNetlink.route) }) {
        case .success(let value): fd = value
        case .failure(let errno): throw .system("socket(AF_NETLINK)", subject: "NETLINK_ROUTE", errno: errno)
        }
        // Best effort: short acks, the kernel's own error text, and no endless wait.
        _ = Syscall.setOption(fd, RouteNetlink.solNetlink, RouteNetlink.capAck, 1)
        _ = Syscall.setOption(fd, RouteNetlink.solNetlink, RouteNetlink.extAck, 1)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        receiveBuffer = .allocate(byteCount: 1 << 16, alignment: 8)
    }

    deinit {
        Syscall.close(fd)
        receiveBuffer.deallocate()
    }

    // MARK: - Links

    /// The index of interface `name`. The corresponding C call is `if_nametoindex(3)`.
    public static func interfaceIndex(named name: String) throws(IOError) -> Int32 {
        let index = if_nametoindex(name)
        if index == 0 {
            let code = Glibc.errno
            throw .system(
                "if_nametoindex", subject: name, errno: Errno(rawValue: code == 0 ? ENODEV : code),
                hint: "no interface \(name) in this network namespace")
        }
        return Int32(bitPattern: index)
    }

    /// Brings interface `name` up (or down).
    public func setLink(_ name: String, up: Bool) throws(IOError) {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: RouteNetlink.newLink, flags: RouteNetlink.request | RouteNetlink.ack)
        message.appendLinkHeader(index: index, flags: up ? RouteNetlink.iffUp : 0, change: RouteNetlink.iffUp)
        try acknowledge(&message, subject: "\(name) \(up ? "up" : "down")", device: name)
    }

    /// Sets the MTU of interface `name`.
    public func setMTU(_ mtu: Int, on name: String) throws(IOError) {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: RouteNetlink.newLink, flags: RouteNetlink.request | RouteNetlink.ack)
        message.appendLinkHeader(index: index, flags: 0, change: 0)
        message.appendAttribute(RouteNetlink.iflaMTU, UInt32(clamping: mtu))
        try acknowledge(&message, subject: "mtu \(mtu) on \(name)", device: name)
    }

    /// Makes interface `name` a port of bridge `bridge`, or detaches it when `bridge` is nil.
    public func setMaster(of name: String, to bridge: String?) throws(IOError) {
        let index = try Netlink.interfaceIndex(named: name)
        let master = try bridge.map { name throws(IOError) in try Netlink.interfaceIndex(named: name) } ?? 0
        var message = NetlinkMessage(type: RouteNetlink.newLink, flags: RouteNetlink.request | RouteNetlink.ack)
        message.appendLinkHeader(index: index, flags: 0, change: 0)
        message.appendAttribute(RouteNetlink.iflaMaster, UInt32(bitPattern: master))
        try acknowledge(&message, subject: "master \(bridge ?? "none") of \(name)", device: name)
    }

    /// Deletes interface `name` (for cleanup; a tun/tap also goes when its descriptor closes).
    public func deleteLink(_ name: String) throws(IOError) {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: RouteNetlink.delLink, flags: RouteNetlink.request | RouteNetlink.ack)
        message.appendLinkHeader(index: index, flags: 0, change: 0)
        try acknowledge(&message, subject: name, device: name)
    }

    /// What the kernel reports about interface `name`.
    public func link(_ name: String) throws(IOError) -> LinkInfo {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: RouteNetlink.getLink, flags: RouteNetlink.request | RouteNetlink.ack)
        message.appendLinkHeader(index: index, flags: 0, change: 0)
        let replies = try transact(&message, subject: name, device: name)
        for reply in replies where reply.type == RouteNetlink.newLink {
            if let info = LinkInfo(payload: reply.payload) { return info }
        }
        throw .invalid("netlink RTM_GETLINK", subject: name, reason: "no answer from the kernel")
    }

    // MARK: - Addresses

    /// Adds `address` (with its prefix length) to interface `name`.
    public func addAddress(_ address: NetlinkPrefix, on name: String) throws(IOError) {
        try changeAddress(RouteNetlink.newAddr, address, on: name, flags: RouteNetlink.request | RouteNetlink.ack | RouteNetlink.create | RouteNetlink.exclusive)
    }

    /// Removes `address` from interface `name`.
    public func deleteAddress(_ address: NetlinkPrefix, on name: String) throws(IOError) {
        try changeAddress(RouteNetlink.delAddr, address, on: name, flags: RouteNetlink.request | RouteNetlink.ack)
    }

    private func changeAddress(_ type: UInt16, _ address: NetlinkPrefix, on name: String, flags: UInt16)
        throws(IOError)
    {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: type, flags: flags)
        message.append(bytes: [address.family, UInt8(address.length), 0, 0])  // ifaddrmsg: family, prefix, flags, scope
        message.append(UInt32(bitPattern: index))
        message.appendAttribute(RouteNetlink.ifaLocal, address.bytes)
        message.appendAttribute(RouteNetlink.ifaAddress, address.bytes)
        try acknowledge(&message, subject: "\(address) on \(name)", device: name)
    }

    /// The addresses configured on interface `name`, IPv4 and IPv6.
    public func addresses(on name: String) throws(IOError) -> [NetlinkPrefix] {
        let index = try Netlink.interfaceIndex(named: name)
        var message = NetlinkMessage(type: RouteNetlink.getAddr, flags: RouteNetlink.request | RouteNetlink.dump)
        message.append(bytes: [0, 0, 0, 0])
        message.append(UInt32(0))
        var result: [NetlinkPrefix] = []
        for reply in try transact(&message, subject: "addresses of \(name)", device: name) where reply.type == RouteNetlink.newAddr {
            let p = reply.payload
            guard p.count >= 8, p.load32(at: 4) == UInt32(bitPattern: index) else { continue }
            let attributes = NetlinkAttributes(p, from: 8)
            if let bytes = attributes[RouteNetlink.ifaLocal] ?? attributes[RouteNetlink.ifaAddress],
                let prefix = NetlinkPrefix(bytes: bytes, length: Int(p[1]))
            {
                result.append(prefix)
            }
        }
        return result
    }

    // MARK: - Routes

    /// Routes `destination` (host bits cleared) through interface `name`, in `table`, marked with
    /// protocol `routeProtocol` (4 = static).
    public func addRoute(
        to destination: NetlinkPrefix, device name: String, metric: UInt32? = nil, table: UInt32 = RouteNetlink.mainTable,
        routeProtocol: UInt8 = RouteNetlink.protocolStatic
    ) throws(IOError) {
        try changeRoute(
            RouteNetlink.newRoute, destination, device: name, metric: metric, table: table, routeProtocol: routeProtocol,
            flags: RouteNetlink.request | RouteNetlink.ack | RouteNetlink.create | RouteNetlink.exclusive)
    }

    /// Deletes the route to `destination` through interface `name` in `table`.
    public func deleteRoute(to destination: NetlinkPrefix, device name: String, table: UInt32 = RouteNetlink.mainTable)
        throws(IOError)
    {
        try changeRoute(
            RouteNetlink.delRoute, destination, device: name, metric: nil, table: table, routeProtocol: 0,
            flags: RouteNetlink.request | RouteNetlink.ack)
    }

    private func changeRoute(
        _ type: UInt16, _ destination: NetlinkPrefix, device name: String, metric: UInt32?, table: UInt32,
        routeProtocol: UInt8, flags: UInt16
    ) throws(IOError) {
        let index = try Netlink.interfaceIndex(named: name)
        let network = destination.network
        var message = NetlinkMessage(type: type, flags: flags)
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type; flags.
        let scope: UInt8 = type == RouteNetlink.delRoute ? RouteNetlink.scopeNowhere : (network.isIPv4 ? RouteNetlink.scopeLink : RouteNetlink.scopeUniverse)
        message.append(bytes: [
            network.family, UInt8(network.length), 0, 0, table < 256 ? UInt8(table) : 0,  // RT_TABLE_UNSPEC: RTA_TABLE holds it
            routeProtocol, scope, RouteNetlink.routeUnicast,
        ])
        message.append(UInt32(0))
        message.appendAttribute(RouteNetlink.rtaTable, table)
        if network.length > 0 { message.appendAttribute(RouteNetlink.rtaDst, network.bytes) }
        message.appendAttribute(RouteNetlink.rtaOIF, UInt32(bitPattern: index))
        if let metric { message.appendAttribute(RouteNetlink.rtaPriority, metric) }
        try acknowledge(&message, subject: "\(network) dev \(name)", device: name)
    }

    /// The destinations of the routes through interface `name` in `table`.
    public func routes(device name: String, table: UInt32 = RouteNetlink.mainTable) throws(IOError) -> [NetlinkPrefix] {
        let index = try Netlink.interfaceIndex(named: name)
        var result: [NetlinkPrefix] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            var message = NetlinkMessage(type: RouteNetlink.getRoute, flags: RouteNetlink.request | RouteNetlink.dump)
            message.append(bytes: [family, 0, 0, 0, 0, 0, 0, 0])
            message.append(UInt32(0))
            for reply in try transact(&message, subject: "routes of \(name)", device: name) where reply.type == RouteNetlink.newRoute {
                let p = reply.payload
                guard p.count >= 12 else { continue }
                let attributes = NetlinkAttributes(p, from: 12)
                let routeTable = attributes[RouteNetlink.rtaTable].map { $0.load32(at: 0) } ?? UInt32(p[4])
                guard routeTable == table, attributes[RouteNetlink.rtaOIF]?.load32(at: 0) == UInt32(bitPattern: index) else {
                    continue
                }
                let bytes = attributes[RouteNetlink.rtaDst] ?? [UInt8](repeating: 0, count: p[0] == UInt8(AF_INET) ? 4 : 16)
                if let prefix = NetlinkPrefix(bytes: bytes, length: Int(p[1])) { result.append(prefix) }
            }
        }
        return result
    }

    // MARK: - Transport

    /// Sends a change and waits for its acknowledgement.
    private func acknowledge(_ message: inout NetlinkMessage, subject: String, device: String) throws(IOError) {
        _ = try transact(&message, subject: subject, device: device)
    }

    /// Sends `message` and collects the replies with its sequence number until the ack, the end of
    /// a dump, or an error.
    func transact(_ message: inout NetlinkMessage, subject: String, device: String) throws(IOError)
        -> [NetlinkReply]
    {
        sequence &+= 1
        let seq = sequence
        message.finish(sequence: seq)
        let operation = "netlink \(RouteNetlink.name(of: message.type))"
        let sent = message.bytes.withUnsafeBytes { raw in
            Syscall.retrying { Glibc.send(fd, raw.baseAddress, raw.count, 0) }
        }
        if case .failure(let errno) = sent { throw .system(operation, subject: subject, errno: errno) }

        var replies: [NetlinkReply] = []
        while true {
            let received = Syscall.retrying { recv(fd, receiveBuffer.baseAddress, receiveBuffer.count, 0) }
            let count: Int
            switch received {
            case .success(let n): count = n
            case .failure(let errno):
                let hint = Syscall.wouldBlock(errno) ? "the kernel did not answer within 5 s" : ""
                throw .system(operation, subject: subject, errno: errno, hint: hint)
            }
            var offset = 0
            while offset + 16 <= count {
                let header = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(receiveBuffer)[offset..<count])
                let length = Int(header.load32(at: 0))
                guard length >= 16, length <= header.count else { break }
                let type = header.load16(at: 4)
                let flags = header.load16(at: 6)
                let replySequence = header.load32(at: 8)
                defer { offset += (length + 3) & ~3 }
                guard replySequence == seq else { continue }
                let payload = Array(header[16..<length])
                switch type {
                case RouteNetlink.error:
                    let code = payload.count >= 4 ? Int32(bitPattern: payload.load32(at: 0)) : -EPROTO
                    if code == 0 { return replies }
                    let errno = Errno(rawValue: -code)
                    var hint = RouteNetlink.hint(for: message.type, errno: errno, device: device)
                    if let text = RouteNetlink.extendedAckMessage(payload, flags: flags), !text.isEmpty {
                        hint = hint.isEmpty ? "kernel says: \(text)" : "\(hint) (kernel says: \(text))"
                    }
                    throw .system(operation, subject: subject, errno: errno, hint: hint)
                case RouteNetlink.done:
                    let code = payload.count >= 4 ? Int32(bitPattern: payload.load32(at: 0)) : 0
                    if code < 0 {
                        throw .system(operation, subject: subject, errno: Errno(rawValue: -code))
                    }
                    return replies
                default:
                    replies.append(NetlinkReply(type: type, payload: payload))
                }
            }
        }
    }
}

/// What the kernel reports about a link.
public struct LinkInfo: Sendable, Hashable {
    /// The interface index.
    public var index: Int32
    /// The interface name.
    public var name: String
    /// The MTU in bytes.
    public var mtu: Int
    /// True when administratively up (IFF_UP).
    public var isUp: Bool
    /// The bridge (or bond) it is a port of; 0 for none.
    public var masterIndex: Int32

    init?(payload p: [UInt8]) {
        guard p.count >= 16 else { return nil }
        let attributes = NetlinkAttributes(p, from: 16)
        index = Int32(bitPattern: p.load32(at: 4))
        isUp = p.load32(at: 8) & RouteNetlink.iffUp != 0
        name = attributes[RouteNetlink.iflaName].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } ?? ""
        mtu = Int(attributes[RouteNetlink.iflaMTU]?.load32(at: 0) ?? 0)
        masterIndex = Int32(bitPattern: attributes[RouteNetlink.iflaMaster]?.load32(at: 0) ?? 0)
    }
}

/// One netlink message from the kernel: its type and the bytes after the 16-byte header.
struct NetlinkReply {
    var type: UInt16
    var payload: [UInt8]
}

/// A netlink request under construction (host byte order, 4-byte aligned attributes).
struct NetlinkMessage {
    private(set) var bytes: [UInt8]
    let type: UInt16

    init(type: UInt16, flags: UInt16) {
        self.type = type
        bytes = [UInt8](repeating: 0, count: 16)
        bytes.store16(type, at: 4)
        bytes.store16(flags, at: 6)
    }

    mutating func append(bytes more: [UInt8]) {
        bytes += more
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    mutating func append(_ value: UInt32) { withUnsafeBytes(of: value) { append(bytes: Array($0)) } }

    /// ifinfomsg: family, pad, type, index, flags, change.
    mutating func appendLinkHeader(index: Int32, flags: UInt32, change: UInt32) {
        append(bytes: [0, 0, 0, 0])
        append(UInt32(bitPattern: index))
        append(flags)
        append(change)
    }

    mutating func appendAttribute(_ type: UInt16, _ payload: [UInt8]) {
        var header = [UInt8](repeating: 0, count: 4)
        header.store16(UInt16(4 + payload.count), at: 0)
        header.store16(type, at: 2)
        append(bytes: header + payload)
    }

    mutating func appendAttribute(_ type: UInt16, _ value: UInt32) {
        withUnsafeBytes(of: value) { appendAttribute(type, Array($0)) }
    }

    mutating func finish(sequence: UInt32) {
        bytes.store32(UInt32(bytes.count), at: 0)
        bytes.store32(sequence, at: 8)
    }
}

/// The attributes (type → payload) in `bytes` from `offset` on; later duplicates are ignored.
struct NetlinkAttributes {
    private var table: [UInt16: [UInt8]] = [:]

    init(_ bytes: [UInt8], from offset: Int) {
        var at = offset
        while at + 4 <= bytes.count {
            let length = Int(bytes.load16(at: at))
            guard length >= 4, at + length <= bytes.count else { break }
            let type = bytes.load16(at: at + 2) & 0x3FFF  // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
            if table[type] == nil { table[type] = Array(bytes[(at + 4)..<(at + length)]) }
            at += (length + 3) & ~3
        }
    }

    subscript(type: UInt16) -> [UInt8]? { table[type] }
}

/// rtnetlink constants and names (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h).
public enum RouteNetlink {
    static let route: Int32 = 0  // NETLINK_ROUTE
    static let solNetlink: Int32 = 270
    static let capAck: Int32 = 10  // NETLINK_CAP_ACK
    static let extAck: Int32 = 11  // NETLINK_EXT_ACK

    static let request: UInt16 = 0x1, ack: UInt16 = 0x4, dump: UInt16 = 0x300
    static let exclusive: UInt16 = 0x200, create: UInt16 = 0x400
    static let capped: UInt16 = 0x100, ackTLVs: UInt16 = 0x200  // flags of an NLMSG_ERROR

    static let error: UInt16 = 2, done: UInt16 = 3
    static let newLink: UInt16 = 16, delLink: UInt16 = 17, getLink: UInt16 = 18
    static let newAddr: UInt16 = 20, delAddr: UInt16 = 21, getAddr: UInt16 = 22
    static let newRoute: UInt16 = 24, delRoute: UInt16 = 25, getRoute: UInt16 = 26

    static let iflaName: UInt16 = 3, iflaMTU: UInt16 = 4, iflaMaster: UInt16 = 10
    static let ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2
    static let rtaDst: UInt16 = 1, rtaOIF: UInt16 = 4, rtaPriority: UInt16 = 6, rtaTable: UInt16 = 15
    static let iffUp: UInt32 = 0x1

    /// The main routing table (RT_TABLE_MAIN).
    public static let mainTable: UInt32 = 254
    /// Routes added by an administrator or daemon (RTPROT_STATIC).
    public static let protocolStatic: UInt8 = 4
    static let scopeUniverse: UInt8 = 0, scopeLink: UInt8 = 253, scopeNowhere: UInt8 = 255
    static let routeUnicast: UInt8 = 1

    static func name(of type: UInt16) -> String {
        switch type {
        case newLink: return "RTM_NEWLINK"
        case delLink: return "RTM_DELLINK"
        case getLink: return "RTM_GETLINK"
        case newAddr: return "RTM_NEWADDR"
        case delAddr: return "RTM_DELADDR"
        case getAddr: return "RTM_GETADDR"
        case newRoute: return "RTM_NEWROUTE"
        case delRoute: return "RTM_DELROUTE"
        case getRoute: return "RTM_GETROUTE"
        default: return "message \(type)"
        }
    }

    static func hint(for type: UInt16, errno: Errno, device: String) -> String {
        switch (type, errno.rawValue) {
        case (_, EPERM), (_, EACCES): return "vpnd needs root or CAP_NET_ADMIN"
        case (_, ENODEV): return "no interface \(device) in this network namespace"
        case (newAddr, EEXIST): return "the address is already configured"
        case (newRoute, EEXIST): return "the route already exists (set by hand, or left by an earlier vpnd?)"
        case (newRoute, ENETDOWN): return "bring \(device) up before adding routes"
        case (delAddr, EADDRNOTAVAIL): return "the address is not configured on \(device)"
        case (delRoute, ESRCH): return "no such route"
        case (newLink, EINVAL): return "the value is outside what \(device) accepts (MTU range, or not a bridge?)"
        case (newLink, EOPNOTSUPP): return "\(device) cannot be attached there (is the master a bridge?)"
        default: return IOError.genericHint(errno)
        }
    }

    /// The kernel's text in an extended ack (NLMSGERR_ATTR_MSG), when present.
    static func extendedAckMessage(_ payload: [UInt8], flags: UInt16) -> String? {
        guard flags & ackTLVs != 0, payload.count >= 20 else { return nil }
        let embedded = flags & capped != 0 ? 16 : Int(payload.load32(at: 4))
        let start = 4 + ((embedded + 3) & ~3)
        guard start <= payload.count else { return nil }
        return NetlinkAttributes(payload, from: start)[1].map {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

extension Array where Element == UInt8 {
    func load16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func load32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }
    mutating func store16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value)
        self[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }
    mutating func store32(_ value: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}

extension UnsafeRawBufferPointer {
    func load16(at offset: Int) -> UInt16 { loadUnaligned(fromByteOffset: offset, as: UInt16.self) }
    func load32(at offset: Int) -> UInt32 { loadUnaligned(fromByteOffset: offset, as: UInt32.self) }
}
