// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

// Fuzz target (f): the UAPI `set=1` parser (UAPISetRequest) on arbitrary text.
//
// Input: the request's text (invalid UTF-8 replaced). Invariants: a refusal answers EINVAL or
// EPROTO with one line, which never repeats the value of the private or preshared key line it
// refuses; an
// accepted request names only public keys that are in the input; and its get answer (the
// interface it describes, with no counters), less the get-only keys, parses back to a request
// with the same keys, peers, endpoints and AllowedIPs. Applied to a running two-peer tunnel
// (Tunnel.check, Tunnel.apply): check and apply agree; a refusal changes nothing; the result has
// one entry per key and no prefix on two peers; the same request applied again changes nothing.

/// The first 12 characters of line `number`'s value (1-based) when it sets a private or
/// preshared key and they look like key material (hex digits).
func secretPrefix(_ text: String, line number: Int) -> Substring? {
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard number >= 1, number <= lines.count, let equals = lines[number - 1].firstIndex(of: "=") else { return nil }
    let line = lines[number - 1]
    let key = line[..<equals]
    guard key == "private_key" || key == "preshared_key" else { return nil }
    let prefix = line[line.index(after: equals)...].prefix(12)
    return prefix.count == 12 && prefix.allSatisfy(\.isHexDigit) ? prefix : nil
}

/// N of a refusal that starts with "line N:".
func lineNumber(_ message: String) -> Int? {
    guard message.hasPrefix("line "), let colon = message.firstIndex(of: ":") else { return nil }
    return Int(message[message.index(message.startIndex, offsetBy: 5)..<colon])
}

func device(from request: UAPISetRequest) -> UAPIDevice {
    func key(_ change: UAPIKeyChange?) -> SecretKey? {
        if case .set(let key) = change { return key }
        return nil
    }
    var peers: [UAPIDevice.Peer] = []
    for change in request.peers where !change.remove {
        var allowed: [IPPrefix] = []
        for ip in change.allowedIPs {
            switch ip {
            case .add(let prefix): if !allowed.contains(prefix) { allowed.append(prefix) }
            case .remove(let prefix): allowed.removeAll { $0 == prefix }
            }
        }
        peers.append(UAPIDevice.Peer(
            publicKey: change.publicKey, presharedKey: key(change.presharedKey), endpoint: change.endpoint,
            lastHandshake: nil, receivedBytes: 0, sentBytes: 0, persistentKeepalive: change.persistentKeepalive ?? 0,
            allowedIPs: allowed))
    }
    return UAPIDevice(privateKey: key(request.privateKey), listenPort: request.listenPort, fwmark: request.fwmark ?? 0, peers: peers)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    let request: UAPISetRequest
    do throws(UAPIError) {
        request = try UAPISetRequest.parse(text)
    } catch {
        invariant(error.errno == UAPIError.invalid || error.errno == UAPIError.protocolError, "errno \(error.errno)")
        invariant(!error.message.contains("\n"), "the refusal is more than one line: \(error.message)")
        if let number = lineNumber(error.message), let secret = secretPrefix(text, line: number) {
            invariant(!error.message.contains(secret), "the refusal of a key line repeats its value: \(error.message)")
        }
        return 0
    }
    for peer in request.peers {
        invariant(text.lowercased().contains(peer.publicKey.description), "a public key that is not in the input")
    }
    // The described interface, less get-only keys, reads back as the same request.
    let described = device(from: request)
    let answer = described.getResponse
    invariant(answer.hasSuffix("errno=0\n\n"), "the get answer does not end with errno=0")
    let getOnly = ["last_handshake_time_sec=", "last_handshake_time_nsec=", "tx_bytes=", "rx_bytes=", "errno="]
    let setText = answer.split(separator: "\n").filter { line in !getOnly.contains { line.hasPrefix($0) } }
        .map { $0 + "\n" }.joined()
    let again: UAPISetRequest
    do throws(UAPIError) {
        again = try UAPISetRequest.parse(setText)
    } catch {
        invariant(false, "the get answer of an accepted request does not parse: \(error)")
        return 0
    }
    invariant(again.peers.count == described.peers.count, "peers lost in the round trip")
    for (a, b) in zip(again.peers, described.peers) {
        invariant(a.publicKey == b.publicKey && a.endpoint == b.endpoint, "a peer changed in the round trip")
        invariant(a.allowedIPs == b.allowedIPs.map { .add($0) }, "AllowedIPs changed in the round trip")
        invariant((a.persistentKeepalive ?? 0) == b.persistentKeepalive, "keepalive changed in the round trip")
    }
    invariant((again.listenPort ?? 0) == (described.listenPort ?? 0), "listen_port changed in the round trip")
    applyToRunningTunnel(request)
    return 0
}

/// A tun interface with two peers, one with a session, built afresh per input.
func runningTunnel() -> Tunnel {
    var keys = SeededEntropy(seed: 5)
    let ours = X25519.generatePrivateKey(using: &keys)
    let a = X25519.publicKey(for: X25519.generatePrivateKey(using: &keys))
    let b = X25519.publicKey(for: X25519.generatePrivateKey(using: &keys))
    return Tunnel(
        configuration: TunnelConfiguration(
            mode: .tun, privateKey: ours, mtu: 1420,
            peers: [
                PeerConfiguration(publicKey: a, allowedIPs: [IPPrefix("10.8.0.2/32")!], endpoint: Endpoint("192.0.2.1:51820")),
                PeerConfiguration(publicKey: b, allowedIPs: [IPPrefix("10.8.0.0/24")!]),
            ]),
        entropy: SeededEntropy(seed: 6), timestamps: SteppingTimestamps())
}

/// Applied to a running tunnel: check and apply agree, the result is consistent (one entry per
/// key, no prefix routed to two peers), applying it again changes nothing, and the tunnel goes on.
func applyToRunningTunnel(_ request: UAPISetRequest) {
    let tunnel = runningTunnel()
    tunnel.initiateHandshakes(now: .zero)
    let checked: Bool
    do throws(UAPIError) {
        try tunnel.check(request)
        checked = true
    } catch {
        checked = false
        invariant(!error.message.contains("\n"), "a refusal of more than one line")
    }
    let before = tunnel.status(now: .zero)
    do throws(UAPIError) {
        _ = try tunnel.apply(request, now: .zero + .seconds(1))
        invariant(checked, "apply accepted what check refused")
    } catch {
        invariant(!checked, "check accepted what apply refused: \(error)")
        let after = tunnel.status(now: .zero)
        invariant(after.peers.map(\.publicKey) == before.peers.map(\.publicKey), "a refused request changed the peers")
        return
    }
    let status = tunnel.status(now: .zero + .seconds(1))
    let keys = status.peers.map(\.publicKey)
    invariant(Set(keys).count == keys.count, "a peer listed twice")
    invariant(keys.count == tunnel.configuration.peers.count, "status and configuration disagree")
    let prefixes = status.peers.flatMap(\.allowedIPs)
    invariant(Set(prefixes).count == prefixes.count, "a prefix routed to two peers")
    do throws(UAPIError) {
        let again = try tunnel.apply(request, now: .zero + .seconds(2))
        invariant(again.isEmpty, "applying the same request twice changed something the second time: \(again)")
    } catch {
        invariant(false, "a request accepted once was refused the second time: \(error)")
    }
    tunnel.tick(now: .zero + .seconds(30))
    while tunnel.outbox.dequeue({ _ in }) {}
    _ = tunnel.takeHandshakeJobs()
}

@_cdecl("FuzzUAPI_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: {
        let a = String(repeating: "a1", count: 32)
        let b = String(repeating: "b2", count: 32)
        let secret = String(repeating: "c3", count: 32)
        let full = """
            private_key=\(secret)
            listen_port=51820
            fwmark=1234
            replace_peers=true
            public_key=\(a)
            preshared_key=\(secret)
            endpoint=192.0.2.1:51820
            persistent_keepalive_interval=25
            replace_allowed_ips=true
            allowed_ip=10.8.0.2/32
            allowed_ip=fd00::2/128
            protocol_version=1
            public_key=\(b)
            update_only=true
            endpoint=[2001:db8::1]:4000
            allowed_ip=-10.9.0.0/24

            """
        return [
            Seed("full", Array(full.utf8)),
            Seed("remove", Array("public_key=\(a)\nremove=true\n".utf8)),
            Seed("bad-hex", Array("private_key=\(secret.dropLast())x\n".utf8)),
            Seed("allowed-ip-first", Array("allowed_ip=10.0.0.0/8\npublic_key=\(a)\n".utf8)),
            Seed("no-equals", Array("listen_port\n".utf8)),
        ]
    }, callback: fuzzOneInput)
}
