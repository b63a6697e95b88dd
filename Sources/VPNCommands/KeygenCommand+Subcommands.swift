// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux
import VPNBasics
import VPNCrypto

extension KeygenCommand {
    /// `vpnd-keygen genkey`: a new private key on standard output.
    struct GenKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "genkey",
            abstract: "Print a new private key (base64, clamped, like `wg genkey`).",
            discussion: """
                Reads 32 bytes from the system's random source, clamps them as X25519 requires and \
                prints them as base64. Save the output with owner-only permissions, for example:
                  (umask 077; vpnd-keygen genkey > keys/host.key)
                `vpnd-keygen generate NAME` does this and also writes the public key.
                """)

        func run() throws {
            var entropy = try systemEntropy()
            let key = X25519.generatePrivateKey(using: &entropy)
            warnIfStandardOutputIsExposed()
            print(KeyEncoding.encode(key))
        }
    }

    /// `vpnd-keygen pubkey`: the public key of the private key on standard input.
    struct PubKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pubkey",
            abstract: "Read a private key on standard input and print its public key (like `wg pubkey`).",
            discussion: """
                Surrounding whitespace and the trailing newline are ignored. Example:
                  vpnd-keygen pubkey < keys/host.key
                """)

        func run() throws {
            let key = try readPrivateKeyFromStandardInput()
            print(KeyEncoding.encode(X25519.publicKey(for: key)))
        }
    }

    /// `vpnd-keygen genpsk`: a new pre-shared key on standard output.
    struct GenPSK: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "genpsk",
            abstract: "Print a new pre-shared key (32 random bytes in base64, like `wg genpsk`).",
            discussion: """
                Both peers configure the same pre-shared key; it is mixed into the handshake as a \
                hedge against a future break of X25519. Keep it as secret as a private key:
                  (umask 077; vpnd-keygen genpsk > keys/link.psk)
                """)

        func run() throws {
            var entropy = try systemEntropy()
            let key = SecretKey(random: &entropy)
            warnIfStandardOutputIsExposed()
            print(KeyEncoding.encode(key))
        }
    }

    /// `vpnd-keygen generate NAME`: a key pair written to `DIR/NAME.key` and `DIR/NAME.pub`.
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Create a key pair: DIR/NAME.key (mode 0600) and DIR/NAME.pub; print the public key.",
            discussion: """
                The private key file is created with umask 077 and O_EXCL, so an existing key is never \
                overwritten unless --force is given. The directory is created (mode 0700) if missing. \
                Give the printed public key to the other peer.
                """)

        @Argument(help: "Name of the key pair, such as the host name; must not contain '/'.")
        var name: String

        @Option(help: "Directory for the key files.")
        var dir: String = "keys"

        @Flag(help: "Replace an existing NAME.key; the old private key is lost.")
        var force = false

        func validate() throws {
            if name.isEmpty { throw ValidationError("NAME must not be empty.") }
            if name.contains("/") {
                throw ValidationError("NAME '\(name)' must not contain '/'; use --dir to choose the directory.")
            }
            if name == "." || name == ".." || name.hasPrefix("-") {
                throw ValidationError("NAME '\(name)' is not a usable file name.")
            }
            if dir.isEmpty { throw ValidationError("--dir must not be empty.") }
        }

        func run() throws {
            var entropy = try systemEntropy()
            try makeDirectory(dir)
            let base = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            let privateKey = X25519.generatePrivateKey(using: &entropy)
            let publicKey = X25519.publicKey(for: privateKey)
            try KeyFile.writePrivateKey(privateKey, path: base + ".key", replace: force)
            try KeyFile.writePublicKey(publicKey, path: base + ".pub")
            print(KeyEncoding.encode(publicKey))
        }
    }

    /// `vpnd-keygen show FILE`: the public key of a private key file.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print the public key of a private key file.",
            discussion: """
                The file must not be readable by group or others (mode 0600, as `generate` creates \
                it); otherwise vpnd-keygen refuses it and prints the chmod that fixes it.
                """)

        @Argument(help: "The private key file, e.g. keys/server.key.")
        var file: String

        func run() throws {
            let key = try KeyFile.readPrivateKey(path: file)
            print(KeyEncoding.encode(X25519.publicKey(for: key)))
        }
    }
}

/// The system's entropy, after checking that libsodium could start.
private func systemEntropy() throws(KeygenFailure) -> SystemEntropy {
    guard Sodium.initialise() else {
        throw KeygenFailure(message: "libsodium could not initialise (no source of random numbers)")
    }
    return SystemEntropy()
}

/// Reads all of standard input (at most ``KeyFile/maximumByteCount`` bytes) and decodes a private key.
private func readPrivateKeyFromStandardInput() throws(KeygenFailure) -> SecretKey {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: KeyFile.maximumByteCount + 1, alignment: 16)
    defer {
        secureZero(buffer)
        buffer.deallocate()
    }
    let count: Int
    do throws(FileAccessError) {
        count = try SmallFiles.readStandardInput(into: buffer)
    } catch {
        let reason = if case .system(_, _, let message) = error { message } else { "\(error)" }
        throw KeygenFailure(message: "cannot read standard input: \(reason)")
    }
    if count > KeyFile.maximumByteCount {
        throw KeygenFailure(message: "standard input is too long for a key (a key is one line of 44 characters)")
    }
    let text = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), as: UTF8.self)
    if text.allSatisfy(\.isWhitespace) {
        throw KeygenFailure(message: "no private key on standard input; try: vpnd-keygen genkey | vpnd-keygen pubkey")
    }
    do {
        return try KeyEncoding.decodeSecretKey(text)
    } catch {
        throw KeygenFailure(message: "standard input: \(error.description)")
    }
}

/// Warns, as `wg genkey` does, when a secret is about to land in a file that group or others can read.
private func warnIfStandardOutputIsExposed() {
    guard SmallFiles.standardOutputIsExposedFile else { return }
    writeStandardError(
        "vpnd-keygen: warning: standard output is a file that group or others can read; "
            + "create it under umask 077 or run chmod 600 on it\n")
}

/// Creates `path` and any missing parents with mode 0700; an existing directory is fine.
private func makeDirectory(_ path: String) throws(KeyFileError) {
    do throws(FileAccessError) {
        try SmallFiles.makeDirectories(path)
    } catch {
        throw KeyFileError(path: path, error)  // .notRegularFile: exists, but is not a directory
    }
}
