// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import VPNBasics

extension vpnd_endpoint {
    /// The C form of `endpoint`; allocates nothing.
    @inline(__always)
    init(_ endpoint: Endpoint) {
        self.init()
        let address = endpoint.address
        withUnsafeMutableBytes(of: &self.address) { target in
            withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
        }
        self.port = endpoint.port
        self.scope_id = endpoint.scopeID
    }
}

extension Endpoint {
    /// The Swift form of a C endpoint; allocates nothing.
    @inline(__always)
    init(_ c: vpnd_endpoint) {
        var storage: (UInt64, UInt64) = (0, 0)
        var bytes = c.address
        withUnsafeMutableBytes(of: &storage) { target in
            withUnsafeBytes(of: &bytes) { target.copyMemory(from: $0) }
        }
        self.init(address: storage, port: c.port, scopeID: c.scope_id)
    }

    /// True for `::` and `0.0.0.0`.
    var isUnspecified: Bool {
        let v4 = isIPv4
        return withUnsafeBytes(of: address) { b in
            v4 ? (b[12] | b[13] | b[14] | b[15]) == 0 : b.allSatisfy { $0 == 0 }
        }
    }

    /// The socket family to use for this endpoint: AF_INET for IPv4, AF_INET6 otherwise.
    var socketFamily: Int32 { isIPv4 ? AF_INET : AF_INET6 }

    /// A sockaddr for a socket of `family` (IPv4 becomes IPv4-mapped on AF_INET6); nil when an IPv6
    /// endpoint is given for an AF_INET socket.
    func sockaddr(family: Int32) -> (sockaddr_storage, socklen_t)? {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var c = vpnd_endpoint(self)
        guard vpnd_endpoint_to_sockaddr(&c, family, &storage, &length) == 0 else { return nil }
        return (storage, length)
    }

    /// An endpoint from a sockaddr_in or sockaddr_in6 (`.none` for anything else).
    init(sockaddr storage: sockaddr_storage) {
        var storage = storage
        var c = vpnd_endpoint()
        if vpnd_sockaddr_to_endpoint(&storage, &c) != 0 {
            self = .none
        } else {
            self.init(c)
        }
    }
}

/// Calls `body` with `storage` viewed as a `sockaddr`.
@inline(__always)
func withSockaddrPointer<R>(_ storage: inout sockaddr_storage, _ body: (UnsafeMutablePointer<sockaddr>) -> R) -> R {
    withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1, body) }
}

/// The local address of socket `fd` (getsockname), `.none` on failure.
func localEndpoint(of fd: Int32) -> Endpoint {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let rc = withSockaddrPointer(&storage) { getsockname(fd, $0, &length) }
    return rc == 0 ? Endpoint(sockaddr: storage) : .none
}
