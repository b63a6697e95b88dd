// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNCore
import VPNCrypto
import VPNDaemon

/// Resolves host-name Endpoints again while their peer has no session, so a server whose DNS
/// name moved is found without restarting vpnd (what wg-quick users do with reresolve-dns).
/// Runs on the main thread, never on the data plane (resolving blocks).
struct HostNameRefresher {
    /// How often to check, in seconds of the main loop.
    static let interval: Duration = .seconds(20)

    let peers: [(publicKey: Bytes32, spec: EndpointSpec)]

    func refresh(control: DataPlaneControl, logger: Logger) {
        guard !peers.isEmpty else { return }
        guard let status = freshSnapshot(control, withinMilliseconds: 1000) else { return }
        for peer in peers {
            guard let current = status.peers.first(where: { $0.publicKey == peer.publicKey }), !current.hasSession
            else { continue }
            guard let resolved = try? EndpointResolver.resolve(peer.spec) else {
                logger.warning("Endpoint \(peer.spec) does not resolve now; keeping \(current.endpoint.map { "\($0)" } ?? "none")")
                continue
            }
            if resolved != current.endpoint {
                logger.info("Endpoint \(peer.spec) now resolves to \(resolved); trying there")
                control.requestEndpoint(resolved, forPeer: peer.publicKey)
            }
        }
    }
}
