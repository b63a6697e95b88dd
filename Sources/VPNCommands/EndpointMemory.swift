// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics
import VPNCrypto

/// Where each peer was last heard from, kept in `DIR/NAME.endpoints` (mode 0600) so that a
/// restarted vpnd re-establishes sessions with its clients at once. One line per peer:
/// `PUBLICKEY ENDPOINT`. A missing or damaged file is simply ignored.
struct EndpointMemory {
    let path: String

    init(directory: String, interfaceName: String) {
        path = directory + "/" + interfaceName + ".endpoints"
    }

    func load() -> [Bytes32: Endpoint] {
        guard let text = Posix.readTextFile(path) else { return [:] }
        var out: [Bytes32: Endpoint] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let key = try? KeyEncoding.decodePublicKey(fields[0]),
                let endpoint = Endpoint(fields[1])
            else { continue }
            out[key] = endpoint
        }
        return out
    }

    func save(_ endpoints: [Bytes32: Endpoint]) {
        let text = endpoints.map { "\(KeyEncoding.encode($0.key)) \($0.value)\n" }.sorted().joined()
        let temporary = path + ".tmp"
        let previousMask = umask(0o077)
        defer { umask(previousMask) }
        guard Posix.writeFile(temporary, text) else { return }
        rename(temporary, path)
    }

    func remove() { unlink(path) }
}
