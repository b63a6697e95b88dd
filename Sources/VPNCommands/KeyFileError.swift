// SPDX-License-Identifier: MIT
import VPNCrypto

/// Why a key file could not be read or written; its ``description`` is one line that names the
/// file, the problem and, where there is one, the fix.
public struct KeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Equatable, Sendable {
        /// The file does not exist.
        case notFound
        /// The process may not read (or create) the file.
        case permissionDenied
        /// The path names a directory, a device or something else that is not a regular file.
        case notRegularFile
        /// A secret key file that group or others can read or write; `mode` is its permission bits.
        case exposed(mode: UInt32)
        /// The file is far larger than a key file can be.
        case tooLarge(byteCount: Int)
        /// The text is not a key; the associated error says why.
        case invalidKey(CryptoError)
        /// ``KeyFile/writePrivateKey(_:path:replace:)`` found the file already there.
        case alreadyExists
        /// Any other failed system call, with its `errno`.
        case system(operation: String, errno: Int32, message: String)
    }

    /// The file, as the user spelled it.
    public var path: String
    /// What went wrong.
    public var kind: Kind

    /// Makes an error about `path`.
    public init(path: String, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    public var description: String {
        switch kind {
        case .notFound:
            return "\(path) does not exist"
        case .permissionDenied:
            return "\(path): permission denied"
        case .notRegularFile:
            return "\(path) is not a regular file"
        case .exposed(let mode):
            let octal = String(mode & 0o7777, radix: 8)
            let padded = String(repeating: "0", count: max(0, 4 - octal.count)) + octal
            let what = mode & 0o044 != 0 ? "readable" : mode & 0o022 != 0 ? "writable" : "accessible"
            return "\(path) is \(what) by group or others (mode \(padded)); run: chmod 600 \(path)"
        case .tooLarge(let byteCount):
            return "\(path) is \(byteCount) bytes, too large for a key file (a key is one line of 44 characters)"
        case .invalidKey(let error):
            return "\(path): \(error.description)"
        case .alreadyExists:
            return "\(path) already exists; pass --force to replace it (the old key is lost)"
        case .system(let operation, _, let message):
            return "\(path): \(operation) failed: \(message)"
        }
    }
}
