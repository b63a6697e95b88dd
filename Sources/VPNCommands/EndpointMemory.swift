// SPDX-License-Identifier: MIT
import VPNBasics
import VPNLinux
import VPNCrypto

/// Where each peer was last heard from, kept in `DIR/NAME.endpoints` (mode 0600) so that a
/// restarted vpnd re-establishes sessions with its clients at once. One line per peer:
/// `PUBLICKEY ENDPOINT`. A missing file, or a damaged line, is simply ignored.
///
/// The run directory may belong to the unprivileged account (`User =`) while vpnd, as root,
/// reads the file at start-up: a symbolic link there is not followed, anything but a regular
/// file (a FIFO, a device) is not opened for reading, and a file over ``maximumSize`` is not read;
/// each of these is ignored with one warning line. Saving never follows a link either.
struct EndpointMemory {
    /// The largest file read: far more than any real peer list (a line is under 100 bytes).
    static let maximumSize = 1 << 20

    let path: String

    init(directory: String, interfaceName: String) {
        path = directory + "/" + interfaceName + ".endpoints"
    }

    /// What `load` found, and the one-line warning to log when the file was refused.
    struct Loaded {
        var endpoints: [Bytes32: Endpoint]
        var warning: String?
    }

    func load() -> Loaded {
        let text: String
        switch Posix.readOwnFile(path, maxBytes: Self.maximumSize) {
        case .missing:
            return Loaded(endpoints: [:])
        case .refused(let reason):
            return Loaded(
                endpoints: [:],
                warning: "endpoint memory \(path) \(reason); ignored (peers are found again as they send); delete it, vpnd writes a fresh one")
        case .text(let contents):
            text = contents
        }
        var out: [Bytes32: Endpoint] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let key = try? KeyEncoding.decodePublicKey(fields[0]),
                let endpoint = Endpoint(fields[1])
            else { continue }
            out[key] = endpoint
        }
        return Loaded(endpoints: out)
    }

    /// Replaces the file atomically (a new `NAME.endpoints.tmp`, mode 0600, renamed over it).
    @discardableResult
    func save(_ endpoints: [Bytes32: Endpoint]) -> Bool {
        let text = endpoints.map { "\(KeyEncoding.encode($0.key)) \($0.value)\n" }.sorted().joined()
        return Posix.replaceFileAtomically(path, text)
    }

    func remove() { SmallFiles.remove(path) }
}
