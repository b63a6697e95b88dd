// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore
import VPNCrypto

/// The text work behind `vpnd peer add` and `vpnd peer remove`: picking a client's address,
/// the `[Peer]` block appended to the server's file, the client's own file, and the lines a
/// removal takes out. Pure, so the tests run it on strings; the command does the files.
enum PeerProvisioning {
    struct Failure: Error, Equatable, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// What a client's file says; the keys are the client's, the server's public key and where
    /// to reach it.
    struct ClientFile {
        enum Format: String, CaseIterable { case vpnd, wgQuick = "wg-quick" }
        var name: String
        var privateKey: SecretKey
        var addresses: [IPPrefix]
        var serverPublicKey: Bytes32
        var presharedKey: SecretKey?
        var endpoint: String
        var allowedIPs: [IPPrefix]
        var dns: [String]
        var persistentKeepalive: Int
        var mode: Config.Mode
        var transport: Config.Transport
        var mtu: Int
        /// The server's `Cipher`, which the client must repeat.
        var cipher: TransportCipher = .chaCha20Poly1305
    }

    /// A peer name: what `vpnd peer list` shows and `remove` takes; it becomes a comment line.
    static func check(name: String) throws(Failure) {
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || "._@+-".unicodeScalars.contains(scalar)
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed, name.first != "-" else {
            throw Failure(
                "the peer name \"\(name)\" is not usable; use 1 to 64 letters, digits and . _ @ + - (such as alice-laptop)")
        }
    }

    /// The lowest free host address in each of the server's `Address` subnets (one per subnet,
    /// IPv4 and IPv6): not the subnet's own address, not IPv4's broadcast address, not one of the
    /// server's addresses, and not inside any peer's AllowedIPs narrower than the subnet.
    static func freeAddresses(in interfaceAddresses: [IPPrefix], peers: [Config.Peer]) throws(Failure) -> [IPPrefix] {
        guard !interfaceAddresses.isEmpty else {
            throw Failure("the server's [Interface] has no Address to pick a client address from; give --address IP")
        }
        var chosen: [IPPrefix] = []
        var seenSubnets: Set<IPPrefix> = []
        for own in interfaceAddresses {
            let subnet = own.masked
            guard seenSubnets.insert(subnet).inserted else { continue }
            let hostBits = own.address.bitWidth - Int(subnet.length)
            guard hostBits >= 2 else {
                throw Failure("Address \(own) leaves no room for clients; give the server a subnet such as \(subnet.address)/24, or --address IP")
            }
            let narrower = peers.flatMap(\.allowedIPs).filter { $0.length > subnet.length && subnet.contains($0.address) }
            let taken = Set(interfaceAddresses.map(\.address))
            var candidate = subnet.address
            var found: IPAddress?
            // At most 65,536 tries: a subnet that full is full for any purpose here.
            for _ in 0..<65_536 {
                guard let next = increment(candidate), subnet.contains(next) else { break }
                candidate = next
                if own.address.isIPv4 && increment(candidate).map({ !subnet.contains($0) }) ?? true { break }  // broadcast
                if taken.contains(candidate) || narrower.contains(where: { $0.contains(candidate) }) { continue }
                found = candidate
                break
            }
            guard let found else {
                throw Failure("no free address left in \(subnet); remove a peer, widen Address, or give --address IP")
            }
            chosen.append(IPPrefix(address: found, length: Int(subnet.length))!)
        }
        return chosen
    }

    /// Checks addresses given with `--address`: each a host address not already routed to a peer.
    static func check(addresses: [IPPrefix], interfaceAddresses: [IPPrefix], peers: [Config.Peer]) throws(Failure) {
        for address in addresses {
            if let owner = peers.first(where: { $0.allowedIPs.contains { $0.length > 0 && $0.contains(address.address) && $0.length >= address.length } }) {
                throw Failure("--address \(address.address) is already routed to the [Peer] at line \(owner.line); pick another")
            }
            if interfaceAddresses.contains(where: { $0.address == address.address }) {
                throw Failure("--address \(address.address) is the server's own address; pick another")
            }
        }
    }

    static func increment(_ address: IPAddress) -> IPAddress? {
        var bytes = address.bytes
        var index = bytes.count - 1
        while index >= 0 {
            if bytes[index] == 0xFF {
                bytes[index] = 0
                index -= 1
            } else {
                bytes[index] += 1
                return IPAddress(bytes: bytes)
            }
        }
        return nil
    }

    /// The `[Peer]` block for the server's file: a blank line, the header, the name comment,
    /// the keys. AllowedIPs are the client's addresses as host routes.
    static func serverBlock(name: String, publicKey: Bytes32, presharedKey: SecretKey?, addresses: [IPPrefix]) -> String {
        var lines = ["", "[Peer]", "# \(name)", "PublicKey = \(KeyEncoding.encode(publicKey))"]
        if let presharedKey { lines.append("PresharedKey = \(KeyEncoding.encode(presharedKey))") }
        lines.append("AllowedIPs = " + addresses.map { IPPrefix(host: $0.address).description }.joined(separator: ", "))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` with `block` appended, after a newline if the file does not end with one.
    static func appending(_ block: String, to text: String) -> String {
        (text.isEmpty || text.hasSuffix("\n") ? text : text + "\n") + block
    }

    /// The client's file in vpnd's form or wg-quick's (what the WireGuard apps import).
    static func clientText(_ file: ClientFile, format: ClientFile.Format, serverName: String) throws(Failure) -> String {
        if format == .wgQuick && (file.mode == .tap || file.transport == .tcp) {
            throw Failure(
                "this server runs \(file.mode.rawValue) over \(file.transport.rawValue), which WireGuard's apps cannot reach; use --format vpnd")
        }
        if format == .wgQuick && file.cipher != .chaCha20Poly1305 {
            throw Failure(
                "this server runs Cipher = \(file.cipher.rawValue), which WireGuard's apps do not speak; use --format vpnd")
        }
        var lines = [
            "# \(file.name): made by `vpnd peer add` for \(serverName)",
            "[Interface]",
            "PrivateKey = \(KeyEncoding.encode(file.privateKey))",
            "Address = " + file.addresses.map(\.description).joined(separator: ", "),
        ]
        if !file.dns.isEmpty { lines.append("DNS = " + file.dns.joined(separator: ", ")) }
        if format == .vpnd {
            if file.mode != .tun { lines.append("Mode = \(file.mode.rawValue)") }
            if file.transport != .udp { lines.append("Transport = \(file.transport.rawValue)") }
            if file.cipher != .chaCha20Poly1305 { lines.append("Cipher = \(file.cipher.rawValue)") }
        }
        if file.mtu != Config.defaultMTU { lines.append("MTU = \(file.mtu)") }
        lines += ["", "[Peer]", "# \(serverName)", "PublicKey = \(KeyEncoding.encode(file.serverPublicKey))"]
        if let presharedKey = file.presharedKey { lines.append("PresharedKey = \(KeyEncoding.encode(presharedKey))") }
        lines.append("Endpoint = \(file.endpoint)")
        lines.append("AllowedIPs = " + file.allowedIPs.map(\.description).joined(separator: ", "))
        if file.persistentKeepalive > 0 { lines.append("PersistentKeepalive = \(file.persistentKeepalive)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `text` without the `[Peer]` section whose header is on line `header` (1-based): from the
    /// header through its last key line, and the blank line above the header when there is one
    /// (so an add and a remove leave the file as it was). Comments and blank lines after the last
    /// key stay: they may belong to what follows.
    static func removingSection(at header: Int, from text: String) -> String {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }).map(String.init)
        guard header >= 1 && header <= lines.count else { return text }
        var last = header - 1
        var index = header
        while index < lines.count {
            var content = Substring(lines[index])
            if let hash = content.firstIndex(of: "#") { content = content[..<hash] }
            let trimmed = content.trimmingSpaces
            if trimmed.hasPrefix("[") { break }
            if !trimmed.isEmpty { last = index }
            index += 1
        }
        var first = header - 1
        if first >= 1 && lines[first - 1].trimmingSpaces.isEmpty { first -= 1 }
        lines.removeSubrange(first...last)
        return lines.joined(separator: "\n")
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text = text.dropLast() }
        return text
    }
}
