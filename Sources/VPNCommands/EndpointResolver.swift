// SPDX-License-Identifier: MIT
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
        let text: String
        do throws(IOError) {
            text = try HostResolver.inChild(as: account, failedSwitch: { "error \(oneLine($0))\n" }) {
                var out = ""
                for spec in specs {
                    guard let spec else { out += "none\n"; continue }
                    do { out += "ok \(try resolve(spec))\n" } catch { out += "error \(oneLine(error))\n" }
                }
                return out
            }
        } catch {
            throw StartupError("cannot resolve Endpoint host names: \(error.operation): \(error.reason)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
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
            switch HostResolver.resolve(name, port: port) {
            case .success(let endpoint):
                return endpoint
            case .failure(.notResolved(let reason)):
                throw StartupError(
                    "cannot resolve Endpoint host \"\(name)\": \(reason); check the name, /etc/hosts or DNS, or give an address")
            case .failure(.noAddress):
                break
            }
            throw StartupError("Endpoint host \"\(name)\" has no IPv4 or IPv6 address")
        }
    }
}
