// SPDX-License-Identifier: MIT
import VPNCore
import VPNLinux

/// A config file with an inline `PrivateKey` or `PresharedKey` is a key file: like
/// `PrivateKeyFile`, it must not be readable by group or others.
enum ConfigFileSecrecy {
    /// Throws a one-line ``StartupError`` ("server.conf holds a PrivateKey and is readable by group
    /// or others (mode 0644); run: chmod 600 server.conf") when the config carries an inline secret
    /// and its mode has any group or other bit.
    static func check(_ config: Config, path: String) throws {
        var what: [String] = []
        if case .key = config.interface.privateKey { what.append("PrivateKey") }
        if config.peers.contains(where: { if case .key = $0.presharedKey { return true } else { return false } }) {
            what.append("PresharedKey")
        }
        guard !what.isEmpty else { return }
        guard let bits = SmallFiles.mode(path) else { return }
        let mode = bits & 0o777
        guard mode & 0o077 != 0 else { return }
        throw StartupError(
            "\(path) holds a \(what.joined(separator: " and a ")) and is readable by group or others (mode 0\(String(mode, radix: 8))); run: chmod 600 \(path)"
        )
    }
}
