// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics

/// Host names through the system resolver (getaddrinfo: /etc/hosts, DNS), and a way to run such
/// work in a child process with another account's privileges.
public enum HostResolver {
    /// Why a name gave no endpoint.
    public enum Failure: Error, Sendable, Equatable {
        /// The resolver's own reason (gai_strerror).
        case notResolved(reason: String)
        /// The name resolved, to no IPv4 or IPv6 address.
        case noAddress
    }

    /// The first IPv4 address of `host` (as wg(8) prefers), else its first IPv6 one, at `port`.
    public static func resolve(_ host: String, port: UInt16) -> Result<Endpoint, Failure> {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        guard status == 0, let first = result else {
            return .failure(.notResolved(reason: String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(first) }
        var v6: Endpoint?
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                if entry.pointee.ai_family == AF_INET {
                    let v4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    let value = UInt32(bigEndian: v4.s_addr)
                    return .success(Endpoint(
                        ipv4: UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                        UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value), port: port))
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
        if let v6 { return .success(v6) }
        return .failure(.noAddress)
    }

    /// Runs `work` in a child process that has first switched to `account` (ids, no capability,
    /// `no_new_privs`, as ``PrivilegeDrop/switchTo(_:)``), and returns the text it produced (at
    /// most 1 MiB); a failed switch gives `failedSwitch(error)`'s text instead. Throws a reason
    /// when no child could be made. Call only while the process has no other thread.
    public static func inChild(
        as account: UserAccount, failedSwitch: (IOError) -> String, _ work: () -> String
    ) throws(IOError) -> String {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            let error = errno
            throw IOError(operation: "pipe", subject: "", errno: error, reason: String(cString: strerror(error)))
        }
        let child = fork()
        if child == 0 {
            close(fds[0])
            var out: String
            do throws(IOError) {
                try PrivilegeDrop.switchTo(account)
                out = work()
            } catch {
                out = failedSwitch(error)
            }
            Posix.writeAll(fds[1], Array(out.utf8))
            _exit(0)
        }
        close(fds[1])
        guard child > 0 else {
            let error = errno
            close(fds[0])
            throw IOError(operation: "fork", subject: "", errno: error, reason: String(cString: strerror(error)))
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
        return String(decoding: bytes, as: UTF8.self)
    }
}
