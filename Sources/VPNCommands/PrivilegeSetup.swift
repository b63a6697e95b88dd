// SPDX-License-Identifier: MIT
import Logging
import VPNBasics
import VPNLinux

/// `User =` / `--user`: the account is looked up before anything is touched, and the switch
/// happens once the interface, its routes, the sockets and the control socket exist, before the
/// data-plane and control threads start (so no byte from the network is parsed as root).
/// Host-name Endpoints are resolved before that by a child that has switched already
/// (``EndpointResolver/resolveAll(_:as:)``).
enum PrivilegeSetup {
    /// The account to switch to, or nil when no user is configured.
    /// - Throws: ``StartupError`` with one line, e.g. "user nosuchuser: no such user in the
    ///   password database; create it (useradd --system nosuchuser) or fix User / --user".
    static func account(named name: String?) throws -> UserAccount? {
        guard let name else { return nil }
        do throws(IOError) {
            return try PrivilegeDrop.lookup(name)
        } catch {
            throw StartupError(error.description)
        }
    }

    /// Hands a private run directory to the account, switches to it, and checks that the run
    /// directory is still writable (endpoint memory, removing the control socket at shutdown).
    ///
    /// The control socket itself stays owned by root, mode 0600: only root can run `vpnd show`.
    /// With `keepNetAdmin` (`KeepNetAdmin = yes`, the default), CAP_NET_ADMIN stays, alone, for
    /// the runtime changes that need it (routes and `fwmark` from `wg set`).
    static func drop(to account: UserAccount, runDirectory: String, keepNetAdmin: Bool, logger: Logger) throws {
        do throws(IOError) {
            let handedOver = try PrivilegeDrop.prepareRunDirectory(runDirectory, for: account)
            if handedOver { logger.debug("run directory \(runDirectory) now belongs to \(account.name)") }
            try PrivilegeDrop.switchTo(account, keeping: keepNetAdmin ? PrivilegeDrop.netAdmin : 0)
        } catch {
            throw StartupError(error.description)
        }
        guard PrivilegeDrop.canWrite(runDirectory) else {
            throw StartupError(
                "after switching to user \(account.name), the run directory \(runDirectory) is not writable or not reachable by it; give \(account.name) a run directory it owns (VPND_RUN_DIR, or systemd RuntimeDirectory=)"
            )
        }
        let now = PrivilegeDrop.credentials()
        let kept = keepNetAdmin ? "CAP_NET_ADMIN only (KeepNetAdmin = yes)" : "none"
        logger.info(
            "switched to user \(account.description); capabilities: \(kept) (effective \(now.effectiveCapabilities), permitted \(now.permittedCapabilities)); the interface goes away with vpnd's tun descriptor when it exits"
        )
    }
}
