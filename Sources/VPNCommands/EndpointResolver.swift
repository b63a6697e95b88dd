// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics
import VPNCore

/// Turns a configured Endpoint into an address: literals as they are, host names through the
/// system resolver (getaddrinfo: /etc/hosts, DNS), preferring IPv4 as wg(8) does.
enum EndpointResolver {
    static func resolve(_ spec: EndpointSpec) throws -> Endpoint {
        switch spec {
        case .address(let endpoint):
            return endpoint
        case .hostName(let name, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
            hints.ai_family = AF_UNSPEC
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(name, nil, &hints, &result)
            guard status == 0, let first = result else {
                let reason = String(cString: gai_strerror(status))
                throw StartupError(
                    "cannot resolve Endpoint host \"\(name)\": \(reason); check the name, /etc/hosts or DNS, or give an address")
            }
            defer { freeaddrinfo(first) }
            var v6: Endpoint?
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                if let address = entry.pointee.ai_addr {
                    if entry.pointee.ai_family == AF_INET {
                        let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                        let value = UInt32(bigEndian: v4.s_addr)
                        return Endpoint(
                            ipv4: UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value), port: port)
                    }
                    if entry.pointee.ai_family == AF_INET6, v6 == nil {
                        let bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                        }
                        v6 = Endpoint(addressBytes: bytes, port: port)
                    }
                }
                cursor = entry.pointee.ai_next
            }
            if let v6 { return v6 }
            throw StartupError("Endpoint host \"\(name)\" has no IPv4 or IPv6 address")
        }
    }
}
