// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCrypto
import VPNLinux

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
        var text = Array((KeyEncoding.encode(key) + "\n").utf8)
        defer { text.withUnsafeMutableBytes { secureZero($0) } }
        do throws(FileAccessError) {
            try SmallFiles.createPrivate(path, bytes: text, replace: replace)
        } catch {
            throw KeyFileError(path: path, error)
        }
    }

    /// Writes a public key to `path` as base64 and a newline (mode 0644), replacing any file there.
    ///
    /// - Throws: ``KeyFileError`` with the failed system call.
    public static func writePublicKey(_ key: Bytes32, path: String) throws(KeyFileError) {
        do throws(FileAccessError) {
            try SmallFiles.writePublic(path, bytes: Array((KeyEncoding.encode(key) + "\n").utf8))
        } catch {
            throw KeyFileError(path: path, error)
        }
    }

    /// The permission bits of a secret key file that make it unsafe: any access by group or others.
    static let exposedBits: UInt32 = SmallFiles.exposedBits

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
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maximumByteCount + 1, alignment: 16)
        defer {
            secureZero(buffer)
            buffer.deallocate()
        }
        let count: Int
        do throws(FileAccessError) {
            count = try SmallFiles.read(path, requirePrivate: requirePrivate, into: buffer)
        } catch {
            throw KeyFileError(path: path, error)
        }
        // The String copy is unavoidable with a String-based decoder; it is short-lived.
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
        return try body(text[...])
    }
}

extension KeyFileError {
    /// The same failure, said of the key file at `path`.
    init(path: String, _ error: FileAccessError) {
        switch error {
        case .notFound: self.init(path: path, kind: .notFound)
        case .permissionDenied: self.init(path: path, kind: .permissionDenied)
        case .notRegularFile: self.init(path: path, kind: .notRegularFile)
        case .exposed(let mode): self.init(path: path, kind: .exposed(mode: mode))
        case .tooLarge(let count): self.init(path: path, kind: .tooLarge(byteCount: count))
        case .alreadyExists: self.init(path: path, kind: .alreadyExists)
        case .system(let operation, let errno, let message):
            self.init(path: path, kind: .system(operation: operation, errno: errno, message: message))
        }
    }
}
