// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// The account vpnd switches to after start-up (`User =` / `--user`).
public struct UserAccount: Sendable, Equatable, CustomStringConvertible {
    /// The name as given (a name, or a numeric id).
    public let name: String
    /// The user id.
    public let uid: UInt32
    /// The primary group id.
    public let gid: UInt32
    /// False for a numeric id that has no passwd entry: then the process gets no supplementary groups.
    public let hasPasswdEntry: Bool

    public init(name: String, uid: UInt32, gid: UInt32, hasPasswdEntry: Bool) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.hasPasswdEntry = hasPasswdEntry
    }

    /// "nobody (uid 65534, gid 65534)".
    public var description: String { "\(name) (uid \(uid), gid \(gid))" }
}

/// The process's credentials as the kernel reports them, for the start-up log and for tests.
public struct ProcessCredentials: Sendable, Equatable {
    public var realUID: UInt32, effectiveUID: UInt32, savedUID: UInt32
    public var realGID: UInt32, effectiveGID: UInt32, savedGID: UInt32
    /// Effective and permitted capability sets (bit n = capability n).
    public var effectiveCapabilities: UInt64, permittedCapabilities: UInt64
}

/// Switches a root process to an unprivileged account once its interface and sockets exist.
///
/// Nothing is kept but what the caller names (vpnd: CAP_NET_ADMIN alone, unless `KeepNetAdmin =
/// no`), not even for `User = root`, which keeps the ids and cuts the capability sets. The open tun descriptor and sockets keep working; the
/// interface disappears with the tun descriptor when the process exits, so teardown needs no
/// privilege. no_new_privs is set. Call ``switchTo(_:keeping:)`` before any thread that parses untrusted
/// input starts.
public enum PrivilegeDrop {
    /// Looks `user` up with getpwnam_r, or getpwuid_r for a numeric id.
    ///
    /// A numeric id without a passwd entry is accepted as uid = gid = that number.
    /// - Throws: ``IOError`` "user nosuchuser: no such user in the password database; create it
    ///   (useradd --system nosuchuser) or fix User / --user".
    public static func lookup(_ user: String) throws(IOError) -> UserAccount {
        let operation = "user"
        guard !user.isEmpty, !user.utf8.contains(0) else {
            throw .invalid(operation, subject: "\"\(user)\"", reason: "empty or invalid user name", hint: "fix User / --user")
        }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        let numeric = user.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } ? UInt32(user) : nil
        let status: Int32
        if let numeric {
            status = getpwuid_r(uid_t(numeric), &entry, &buffer, buffer.count, &result)
        } else {
            status = getpwnam_r(user, &entry, &buffer, buffer.count, &result)
        }
        if let found = result {
            return UserAccount(name: user, uid: UInt32(found.pointee.pw_uid), gid: UInt32(found.pointee.pw_gid), hasPasswdEntry: true)
        }
        if let numeric {
            return UserAccount(name: user, uid: numeric, gid: numeric, hasPasswdEntry: false)
        }
        if status != 0 && status != ENOENT && status != ESRCH {
            throw .system("getpwnam_r", subject: user, errno: Errno(rawValue: status), hint: "check /etc/nsswitch.conf")
        }
        throw .invalid(
            operation, subject: user, reason: "no such user in the password database",
            hint: "create it (useradd --system \(user)) or fix User / --user")
    }

    /// Makes the run directory usable by `account` after the switch: a private directory (no
    /// group or other bits) owned by root is handed to the account (chown, mode stays 0700), so
    /// that the daemon can rewrite its endpoints file and remove its control socket. Any other
    /// directory is left alone; ``switchTo(_:)``'s caller checks it is writable afterwards.
    /// Returns true when the directory was handed over.
    @discardableResult
    public static func prepareRunDirectory(_ path: String, for account: UserAccount) throws(IOError) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .system("stat", subject: path, errno: Errno(rawValue: Glibc.errno))
        }
        guard geteuid() == 0, info.st_uid == 0, info.st_mode & 0o077 == 0, account.uid != 0 else { return false }
        guard chown(path, uid_t(account.uid), gid_t(account.gid)) == 0 else {
            throw .system(
                "chown", subject: path, errno: Errno(rawValue: Glibc.errno),
                hint: "handing the run directory to User / --user needs root with CAP_CHOWN")
        }
        return true
    }

    /// Switches the whole process (every thread) to `account`: supplementary groups (initgroups,
    /// or none), then gid, then uid, all three ids (real, effective, saved) of each; then cuts
    /// the effective and permitted sets to `kept` (the inheritable and ambient ones to none), sets
    /// no_new_privs, and checks that the switch cannot be undone and that exactly `kept` is left.
    /// A process that already runs as `account` (say, started by systemd with `User=` and ambient
    /// capabilities) only loses the capabilities not kept.
    /// - Throws: ``IOError`` naming the failed step, e.g. "setresuid nobody: operation not
    ///   permitted (EPERM); User / --user needs vpnd to start as root".
    /// CAP_NET_ADMIN's bit, for ``switchTo(_:keeping:)``.
    public static let netAdmin: UInt64 = 1 << 12

    public static func switchTo(_ account: UserAccount, keeping kept: UInt64 = 0) throws(IOError) {
        let before = credentials()
        let alreadyThere = [before.realUID, before.effectiveUID, before.savedUID].allSatisfy { $0 == account.uid }
            && [before.realGID, before.effectiveGID, before.savedGID].allSatisfy { $0 == account.gid }
        if kept != 0 {
            // The permitted set survives setresuid only with keepcaps; it is cut to `kept` below.
            let keep = vpnd_set_keep_capabilities(1)
            guard keep == 0 else { throw .system("prctl(PR_SET_KEEPCAPS)", subject: account.name, errno: Errno(rawValue: -keep)) }
        }
        if !alreadyThere { try switchIDs(to: account) }
        if kept != 0 { _ = vpnd_set_keep_capabilities(0) }
        let cleared = kept == 0 ? vpnd_clear_capabilities() : vpnd_limit_capabilities(kept)
        guard cleared == 0 else {
            throw .system("capset", subject: account.name, errno: Errno(rawValue: -cleared))
        }
        let noNewPrivs = vpnd_set_no_new_privs()
        guard noNewPrivs == 0 else {
            throw .system("prctl(PR_SET_NO_NEW_PRIVS)", subject: account.name, errno: Errno(rawValue: -noNewPrivs))
        }
        let now = credentials()
        let ids = [now.realUID, now.effectiveUID, now.savedUID]
        let groups = [now.realGID, now.effectiveGID, now.savedGID]
        guard ids.allSatisfy({ $0 == account.uid }), groups.allSatisfy({ $0 == account.gid }) else {
            throw .invalid("switch to", subject: account.description, reason: "the kernel reports other ids afterwards")
        }
        guard now.effectiveCapabilities == kept, now.permittedCapabilities == kept else {
            throw .invalid(
                "switch to", subject: account.description,
                reason: "the capabilities afterwards are not the ones kept (CapEff \(now.effectiveCapabilities), CapPrm \(now.permittedCapabilities), wanted \(kept))")
        }
        if account.uid != 0 && setuid(0) == 0 {
            throw .invalid("switch to", subject: account.description, reason: "setuid(0) still succeeds afterwards")
        }
    }

    private static func switchIDs(to account: UserAccount) throws(IOError) {
        let hint = "User / --user needs vpnd to start as root"
        if account.hasPasswdEntry {
            guard initgroups(account.name, gid_t(account.gid)) == 0 else {
                throw .system("initgroups", subject: account.name, errno: Errno(rawValue: Glibc.errno), hint: hint)
            }
        } else {
            guard setgroups(0, nil) == 0 else {
                throw .system("setgroups", subject: account.name, errno: Errno(rawValue: Glibc.errno), hint: hint)
            }
        }
        let gidStatus = vpnd_set_all_gids(account.gid)
        guard gidStatus == 0 else {
            throw .system("setresgid", subject: account.name, errno: Errno(rawValue: -gidStatus), hint: hint)
        }
        let uidStatus = vpnd_set_all_uids(account.uid)
        guard uidStatus == 0 else {
            throw .system("setresuid", subject: account.name, errno: Errno(rawValue: -uidStatus), hint: hint)
        }
    }

    /// The process's ids and capability sets now.
    public static func credentials() -> ProcessCredentials {
        var uids: (UInt32, UInt32, UInt32) = (0, 0, 0)
        var gids: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &uids) { u in
            withUnsafeMutableBytes(of: &gids) { g in
                vpnd_get_ids(u.baseAddress!.assumingMemoryBound(to: UInt32.self), g.baseAddress!.assumingMemoryBound(to: UInt32.self))
            }
        }
        var effective: UInt64 = 0, permitted: UInt64 = 0
        _ = vpnd_capabilities(&effective, &permitted)
        return ProcessCredentials(
            realUID: uids.0, effectiveUID: uids.1, savedUID: uids.2,
            realGID: gids.0, effectiveGID: gids.1, savedGID: gids.2,
            effectiveCapabilities: effective, permittedCapabilities: permitted)
    }

    /// True when the current (real) ids may write and enter `path` (access(2) with W_OK | X_OK).
    public static func canWrite(_ path: String) -> Bool { access(path, W_OK | X_OK) == 0 }
}
