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
    /// With a kill switch: the endpoints it lets out. A name that resolves elsewhere is not
    /// followed (its packets would be dropped); a warning says so.
    var killSwitchEndpoints: Set<Endpoint>?

    init(peers: [(publicKey: Bytes32, spec: EndpointSpec)]) { self.peers = peers }

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
            if resolved != current.endpoint, let allowed = killSwitchEndpoints, !allowed.contains(resolved) {
                logger.warning(
                    "Endpoint \(peer.spec) now resolves to \(resolved), which the kill switch does not let out (it lets out the addresses of the start); restart vpnd to use it")
                continue
            }
            if resolved != current.endpoint {
                logger.info("Endpoint \(peer.spec) now resolves to \(resolved); trying there")
                control.requestEndpoint(resolved, forPeer: peer.publicKey)
            }
        }
    }
}
