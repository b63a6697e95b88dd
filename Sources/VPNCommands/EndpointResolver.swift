// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics
import VPNCore
import VPNLinux

/// Turns a configured Endpoint into an address: literals as they are, host names through the
/// system resolver (getaddrinfo: /etc/hosts, DNS), preferring IPv4 as wg(8) does.
enum EndpointResolver {
    /// Resolves every peer's Endpoint, in order (nil stays nil); throws the first failure, one line.
    ///
    /// With `account` (`User =`), host names are resolved in a child process that first switches
    /// to that account exactly as the daemon later does (ids, no capability, `no_new_privs`), so
    /// no DNS reply is parsed with privileges even at start-up; the child hands its results back
    /// as text over a pipe. This happens before any interface exists, so an unresolvable name
    /// still stops vpnd with one line and nothing to undo. Runs while vpnd has no other thread.
    static func resolveAll(_ specs: [EndpointSpec?], as account: UserAccount?) throws -> [Endpoint?] {
        let hasHostName = specs.contains { if case .hostName = $0 { return true } else { return false } }
        guard let account, hasHostName else { return try specs.map { try $0.map(resolve) } }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw StartupError("cannot resolve Endpoint host names: pipe: \(String(cString: strerror(errno)))")
        }
        let child = fork()
        if child == 0 {
            close(fds[0])
            var out = ""
            do throws(IOError) {
                try PrivilegeDrop.switchTo(account)
                for spec in specs {
                    guard let spec else { out += "none\n"; continue }
                    do { out += "ok \(try resolve(spec))\n" } catch { out += "error \(oneLine(error))\n" }
                }
            } catch {
                out = "error \(oneLine(error))\n"
            }
            Posix.writeAll(fds[1], Array(out.utf8))
            _exit(0)
        }
        close(fds[1])
        guard child > 0 else {
            close(fds[0])
            throw StartupError("cannot resolve Endpoint host names: fork: \(String(cString: strerror(errno)))")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let got = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            bytes.append(contentsOf: chunk[0..<got])
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        var results: [Endpoint?] = []
        for line in lines.prefix(specs.count) {
            if line == "none" {
                results.append(nil)
            } else if line.hasPrefix("ok "), let endpoint = Endpoint(line.dropFirst(3)) {
                results.append(endpoint)
            } else if line.hasPrefix("error ") {
                throw StartupError(String(line.dropFirst(6)))
            } else {
                break
            }
        }
        guard results.count == specs.count else {
            throw StartupError("cannot resolve Endpoint host names as user \(account.name): the resolver process gave no answer")
        }
        return results
    }

    private static func oneLine(_ error: any Error) -> String {
        String("\(error)".map { $0 == "\n" ? " " : $0 })
    }

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
