// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore

// Fuzz target (d): Config.parse on arbitrary text, then the command-line overrides.
//
// The input up to the first NUL byte is the file (UTF-8, invalid sequences replaced); what
// follows, split at NUL bytes, is --listen-port, --endpoint, --mode, --transport, --mtu and
// --name in that order. A parsed config is validated for both roles, routed and overridden.
// Invariants: an error is one plain line (no control characters, though a flag may hold a
// newline and a file line a lone CR or an escape), names a line of the file that exists, and
// never shows the value of a PrivateKey or PresharedKey on the line it blames.

func fields(_ bytes: UnsafeRawBufferPointer) -> [String] {
    bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

/// True when `text` has no control character but tab and no Unicode line or paragraph separator:
/// it prints as one line and cannot move the cursor of the terminal or log viewer showing it.
func isOneLine(_ text: String) -> Bool {
    !text.unicodeScalars.contains { scalar in
        (scalar.properties.generalCategory == .control && scalar != "\t") || scalar == "\u{2028}" || scalar == "\u{2029}"
    }
}

func check(_ error: ConfigError, lines: [Substring]) {
    let text = error.description
    invariant(isOneLine(text), "a config error is not one plain line: \(text.debugDescription)")
    invariant(error.line >= 0 && error.line <= lines.count, "error at line \(error.line) of a \(lines.count)-line file")
    guard error.line > 0 else { return }
    let line = lines[error.line - 1]
    guard let equals = line.firstIndex(of: "=") else { return }
    let key = line[..<equals].trimmingSpaces.lowercased()
    let value = String(line[line.index(after: equals)...].prefix { $0 != "#" }.trimmingSpaces)
    if (key == "privatekey" || key == "presharedkey") && value.count >= 16 {
        invariant(!error.message.contains(value), "a config error shows a key's value: \(text)")
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s = s.dropLast() }
        return s
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let parts = fields(UnsafeRawBufferPointer(start: data, count: size))
    let text = parts[0]
    let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    let config: Config
    do throws(ConfigError) {
        config = try Config.parse(text, fileName: "fuzz.conf")
    } catch {
        check(error, lines: lines)
        return 0
    }
    invariant(config.peers.allSatisfy { $0.line >= 1 && $0.line <= lines.count }, "a peer's line is outside the file")
    for role in [Config.Role.server, .client] {
        do throws(ConfigError) { try config.validate(role: role) } catch { check(error, lines: lines) }
    }
    _ = config.routingTable()
    func part(_ i: Int) -> String? { i < parts.count && !parts[i].isEmpty ? parts[i] : nil }
    let overrides = ConfigOverrides(
        listenPort: part(1), endpoint: part(2), mode: part(3), transport: part(4), mtu: part(5), name: part(6))
    do throws(ConfigError) {
        let changed = try config.applying(overrides)
        _ = changed.routingTable()
    } catch {
        invariant(isOneLine(error.description), "an override error is not one plain line: \(error.description.debugDescription)")
    }
    return 0
}

@_cdecl("FuzzConfig_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: {
        let server = """
            # vpnd server
            [Interface]
            PrivateKey = AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=
            Address = 10.8.0.1/24, fd00:8::1/64
            ListenPort = 51820
            MTU = 1420
            Mode = tun
            Transport = udp
            Name = vpnd0

            [Peer]
            PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
            PresharedKeyFile = keys/psk
            AllowedIPs = 10.8.0.2/32, fd00:8::2/128
            PersistentKeepalive = 25
            """
        let client = """
            [Interface]\r
            PrivateKeyFile = keys/client.key\r
            Address = 10.8.0.2/24\r
            Mode = tap\r
            Transport = tcp\r
            Bridge = br0\r
            User = nobody\r
            \r
            [Peer]\r
            PublicKey = HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\r
            PresharedKey = ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\r
            AllowedIPs = 0.0.0.0/0, ::/0\r
            Endpoint = vpn.example.com:51820\r
            PersistentKeepalive = off\r
            """
        let twoPeers = """
            [interface]
            privatekeyfile = /etc/vpnd/server.key
            listenport = 443
            [peer]
            publickey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
            allowedips = 10.8.0.7/24
            endpoint = [fd00::1]:51820
            [peer]
            publickey = HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=
            endpoint = 198.18.0.1:51820
            DNS = 1.1.1.1
            """
        let overrides: [UInt8] = [0] + Array("51821".utf8) + [0] + Array("198.18.0.9:1".utf8) + [0] + Array("tap".utf8)
            + [0] + Array("tcp".utf8) + [0] + Array("1280".utf8) + [0] + Array("vpn-test".utf8)
        return [
            Seed("server.conf", Array(server.utf8)),
            Seed("client-crlf.conf", Array(client.utf8)),
            Seed("two-peers.conf", Array(twoPeers.utf8)),
            Seed("server-overrides", Array(server.utf8) + overrides),
            Seed("bad-section", Array("[Interfcae]\nPrivateKey = x\n".utf8)),
        ]
    }, callback: fuzzOneInput)
}
