// SPDX-License-Identifier: MIT
import CNFTables
import Glibc

/// nftables through libnftables, the official library behind `nft`: one command buffer, in
/// nft's own syntax, is one transaction (every change in it applies, or none does).
///
/// Nothing here reads `nft`'s text output to decide anything: a caller that needs to know what is
/// there asks for JSON (``listJSON(_:)``) and decodes it. A failure becomes an ``NFTablesError``
/// carrying libnftables' own error text. The context acts in the network namespace of the calling
/// thread. Control plane only.
public enum NFTables {
    /// Runs `commands` (one or more lines of nft syntax) as one transaction.
    public static func run(_ commands: String) throws(NFTablesError) {
        _ = try execute(commands, json: false)
    }

    /// Runs a `list ...` command and returns its output as libnftables' JSON text
    /// (`{"nftables": [...]}`).
    public static func listJSON(_ command: String) throws(NFTablesError) -> String {
        try execute(command, json: true)
    }

    private static func execute(_ commands: String, json: Bool) throws(NFTablesError) -> String {
        guard let context = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw NFTablesError(message: "libnftables could not create a context (out of memory?)")
        }
        defer { nft_ctx_free(context) }
        // Both streams into buffers: nothing of libnftables reaches vpnd's own stdout or stderr.
        guard nft_ctx_buffer_output(context) == 0, nft_ctx_buffer_error(context) == 0 else {
            throw NFTablesError(message: "libnftables could not buffer its output")
        }
        if json {
            nft_ctx_output_set_flags(context, nft_ctx_output_get_flags(context) | UInt32(NFT_CTX_OUTPUT_JSON))
        }
        let status = nft_run_cmd_from_buffer(context, commands)
        let output = nft_ctx_get_output_buffer(context).map { String(cString: $0) } ?? ""
        if status != 0 {
            let errorText = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? ""
            throw NFTablesError(message: NFTablesError.summary(of: errorText))
        }
        return output
    }
}

/// A refusal by libnftables: its error text, in one line.
public struct NFTablesError: Error, Sendable, CustomStringConvertible {
    /// What libnftables said, e.g. "Could not process rule: Operation not permitted (add table
    /// inet vpnd-vpn0)".
    public var message: String

    public init(message: String) { self.message = message }

    public var description: String { "nftables: \(message)" }

    /// libnftables' error text (an "Error: ..." line, the command it refers to and a line of
    /// carets under the part at fault, possibly several such groups) as one line: the first error
    /// and the command it names.
    static func summary(of text: String) -> String {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
        guard let first = lines.firstIndex(where: { $0.hasPrefix("Error:") }) ?? lines.indices.first else {
            return "the command failed without saying why"
        }
        var head = String(lines[first])
        if head.hasPrefix("Error:") { head = String(head.dropFirst(6)).trimmingCharacters(in: " ") }
        // The next line is the offending command (unless it is another error or the carets).
        if first + 1 < lines.count {
            let next = lines[first + 1]
            if !next.hasPrefix("Error:") && !next.allSatisfy({ $0 == "^" || $0 == "~" || $0 == " " }) {
                head += " (\(next))"
            }
        }
        return head
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = self[...]
        while let c = slice.first, set.contains(c) { slice = slice.dropFirst() }
        while let c = slice.last, set.contains(c) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String { self[...].trimmingCharacters(in: set) }
}
