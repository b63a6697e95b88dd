// SPDX-License-Identifier: MIT
import Glibc
import VPNBasics
import VPNCrypto

/// Reading and writing key files: one base64 key per file, the `wg genkey` format.
///
/// Secret key files (private keys, pre-shared keys) must not be readable or writable by group or
/// others: reading one refuses with a message that gives the `chmod` that fixes it, and writing
/// one creates it with mode 0600 under umask 077, with `O_EXCL` so an existing key is never
/// overwritten by accident. `vpnd-keygen` and the daemon's config loader both read keys here.
/// Stateless; safe to call from any thread (``writePrivateKey(_:path:replace:)`` changes the
/// process umask for the duration of the call).
public enum KeyFile {
    /// The largest key file read: a key, a newline and generous room for whitespace.
    public static let maximumByteCount = 1024

    /// Reads a private key from `path`, refusing a file that group or others can access.
    ///
    /// - Throws: ``KeyFileError`` naming the file and the problem: missing, unreadable, not a
    ///   regular file, exposed (with the `chmod 600` fix), too large, or not a valid key.
    public static func readPrivateKey(path: String) throws(KeyFileError) -> SecretKey {
        try readSecret(path: path)
    }

    /// Reads a pre-shared key from `path`, with the same checks as ``readPrivateKey(path:)``.
    ///
    /// - Throws: ``KeyFileError`` as ``readPrivateKey(path:)`` does.
    public static func readPresharedKey(path: String) throws(KeyFileError) -> SecretKey {
        try readSecret(path: path)
    }

    /// Reads a public key from `path`; any permissions are fine.
    ///
    /// - Throws: ``KeyFileError`` when the file is missing, unreadable or not a valid key.
    public static func readPublicKey(path: String) throws(KeyFileError) -> Bytes32 {
        try withContents(path: path, requirePrivate: false) { (text) throws(KeyFileError) -> Bytes32 in
            do throws(CryptoError) {
                return try KeyEncoding.decodePublicKey(text)
            } catch {
                throw KeyFileError(path: path, kind: .invalidKey(error))
            }
        }
    }

    /// Writes `key` to `path` as base64 and a newline, creating the file with mode 0600.
    ///
    /// - Parameters:
    ///   - key: the private key or pre-shared key.
    ///   - path: the file to create.
    ///   - replace: when true an existing file is removed first; when false it is an error.
    /// - Throws: ``KeyFileError`` with kind ``KeyFileError/Kind/alreadyExists`` when the file exists
    ///   and `replace` is false, or the failed system call.
    public static func writePrivateKey(_ key: SecretKey, path: String, replace: Bool) throws(KeyFileError) {
        if replace, unlink(path) != 0, errno != ENOENT {
            throw systemError(path: path, operation: "unlink")
        }
        let previousMask = umask(0o077)
        defer { umask(previousMask) }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode_t(0o600))
        guard fd >= 0 else {
            throw errno == EEXIST ? KeyFileError(path: path, kind: .alreadyExists) : systemError(path: path, operation: "open")
        }
        defer { close(fd) }
        // The mode given to open() already is 0600; fchmod makes it independent of any ACL default.
        guard fchmod(fd, 0o600) == 0 else { throw systemError(path: path, operation: "fchmod") }
        var text = Array((KeyEncoding.encode(key) + "\n").utf8)
        defer { text.withUnsafeMutableBytes { secureZero($0) } }
        try writeAll(fd: fd, text, path: path)
    }

    /// Writes a public key to `path` as base64 and a newline (mode 0644), replacing any file there.
    ///
    /// - Throws: ``KeyFileError`` with the failed system call.
    public static func writePublicKey(_ key: Bytes32, path: String) throws(KeyFileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(0o644))
        guard fd >= 0 else { throw systemError(path: path, operation: "open") }
        defer { close(fd) }
        try writeAll(fd: fd, Array((KeyEncoding.encode(key) + "\n").utf8), path: path)
    }

    /// The permission bits of a secret key file that make it unsafe: any access by group or others.
    static let exposedBits: UInt32 = 0o077

    private static func readSecret(path: String) throws(KeyFileError) -> SecretKey {
        try withContents(path: path, requirePrivate: true) { (text) throws(KeyFileError) -> SecretKey in
            do throws(CryptoError) {
                return try KeyEncoding.decodeSecretKey(text)
            } catch {
                throw KeyFileError(path: path, kind: .invalidKey(error))
            }
        }
    }

    /// Opens and checks `path`, reads it into memory that is zeroed afterwards, and passes the text to `body`.
    private static func withContents<R>(
        path: String, requirePrivate: Bool, _ body: (Substring) throws(KeyFileError) -> R
    ) throws(KeyFileError) -> R {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw openError(path: path) }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else { throw systemError(path: path, operation: "fstat") }
        guard info.st_mode & 0o170000 == 0o100000 else { throw KeyFileError(path: path, kind: .notRegularFile) }
        if requirePrivate, info.st_mode & exposedBits != 0 {
            throw KeyFileError(path: path, kind: .exposed(mode: UInt32(info.st_mode)))
        }
        guard info.st_size <= maximumByteCount else {
            throw KeyFileError(path: path, kind: .tooLarge(byteCount: Int(info.st_size)))
        }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maximumByteCount + 1, alignment: 16)
        defer {
            secureZero(buffer)
            buffer.deallocate()
        }
        var count = 0
        while count < buffer.count {
            let n = read(fd, buffer.baseAddress! + count, buffer.count - count)
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError(path: path, operation: "read")
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumByteCount else { throw KeyFileError(path: path, kind: .tooLarge(byteCount: count)) }
        // The String copy is unavoidable with a String-based decoder; it is short-lived.
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        return try body(text[...])
    }

    private static func writeAll(fd: Int32, _ bytes: [UInt8], path: String) throws(KeyFileError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw systemError(path: path, operation: "write")
            }
            written += n
        }
    }

    private static func openError(path: String) -> KeyFileError {
        switch errno {
        case ENOENT: return KeyFileError(path: path, kind: .notFound)
        case EACCES, EPERM: return KeyFileError(path: path, kind: .permissionDenied)
        case EISDIR: return KeyFileError(path: path, kind: .notRegularFile)
        default: return systemError(path: path, operation: "open")
        }
    }

    static func systemError(path: String, operation: String) -> KeyFileError {
        let code = errno
        return KeyFileError(
            path: path, kind: .system(operation: operation, errno: code, message: String(cString: strerror(code))))
    }
}
