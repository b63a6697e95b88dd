// SPDX-License-Identifier: MIT
import ArgumentParser
import VPNLinux
import VPNCrypto

/// `vpnd-keygen`: creates and inspects vpnd keys, in the same base64 format as `wg genkey`,
/// `wg pubkey` and `wg genpsk`, so keys move freely between vpnd and WireGuard.
///
/// Failures other than usage errors print exactly one line, `vpnd-keygen: <problem>`, on
/// standard error and exit with status 1.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "vpnd-keygen",
        abstract: "Create and inspect vpnd keys (WireGuard-compatible base64).",
        discussion: """
            Keys are 32 bytes written as 44 characters of base64, exactly as `wg genkey`, `wg pubkey` \
            and `wg genpsk` print them, so vpnd and WireGuard keys are interchangeable.

            Private keys and pre-shared keys are secrets: vpnd refuses key files that group or others \
            can read. Keep them in the key directory (`keys/` in a checkout), which git ignores.

            Examples:
              vpnd-keygen generate server      (writes keys/server.key and keys/server.pub)
              vpnd-keygen show keys/server.key (prints the public key)
              vpnd-keygen genkey | vpnd-keygen pubkey
            """,
        subcommands: [Generate.self, Show.self, GenKey.self, PubKey.self, GenPSK.self])

    public init() {}

    /// Runs the command line; problems print one line on standard error and exit with status 1.
    public static func main(_ arguments: [String]?) {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as KeyFileError {
            fail(error.description)
        } catch let error as KeygenFailure {
            fail(error.message)
        } catch let error as CryptoError {
            fail(error.description)
        } catch {
            exit(withError: error)
        }
    }

    /// Runs the command line with the process's arguments.
    public static func main() { main(nil) }

    private static func fail(_ message: String) -> Never {
        writeStandardError("vpnd-keygen: \(message)\n")
        Posix.exit(1)
    }
}

/// Writes `text` to standard error unbuffered (C's `stderr` is shared mutable state to Swift 6).
func writeStandardError(_ text: String) {
    Posix.printError(text)
}

/// A failure of `vpnd-keygen` reported to the user as one line.
struct KeygenFailure: Error {
    var message: String
}
