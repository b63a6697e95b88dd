// SPDX-License-Identifier: MIT
import Foundation

/// The outcome of running a program to completion.
struct ProcessResult {
    var status: Int32
    var standardOutput: String
    var standardError: String

    /// Standard error split into lines, without the final empty one.
    var errorLines: [Substring] { standardError.split(separator: "\n", omittingEmptySubsequences: false).dropLast() }
}

/// Finding and running the built `vpnd-keygen` and the system's `wg`.
enum Programs {
    /// The `vpnd-keygen` built with this test bundle.
    ///
    /// `swift test` runs the test bundle from the build directory (`<scratch>/<triple>/debug`),
    /// next to the executables, whatever `--scratch-path` was; `VPND_KEYGEN` overrides the lookup,
    /// and as a last resort the newest `.build*/debug/vpnd-keygen` under the package root is used.
    static let keygen: String? = {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["VPND_KEYGEN"], fm.isExecutableFile(atPath: path) {
            return path
        }
        var candidates: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("vpnd-keygen"))
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("vpnd-keygen"))
        if let found = candidates.first(where: { fm.isExecutableFile(atPath: $0.path) }) { return found.path }

        var root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while root.path != "/", !fm.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        let scratch = (try? fm.contentsOfDirectory(atPath: root.path))?.filter { $0.hasPrefix(".build") } ?? []
        let built = scratch.map { root.appendingPathComponent($0).appendingPathComponent("debug/vpnd-keygen").path }
            .filter { fm.isExecutableFile(atPath: $0) }
        func modified(_ path: String) -> Date {
            ((try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
        }
        return built.max { modified($0) < modified($1) }
    }()

    /// `wg` from wireguard-tools, if installed.
    static let wg: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":") + ["/usr/bin", "/usr/local/bin"])
            .map { "\($0)/wg" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// True when running under CI, where a missing prerequisite fails instead of skipping.
    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Runs `executable` with `arguments`, feeding it `input`, and waits for it.
    static func run(
        _ executable: String, _ arguments: [String], input: String = "", in directory: URL? = nil
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        // Keys and messages are tiny, far below the pipe buffer, so reading after exit cannot deadlock.
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(
            status: process.terminationStatus, standardOutput: String(decoding: out, as: UTF8.self),
            standardError: String(decoding: err, as: UTF8.self))
    }

    /// Runs the built `vpnd-keygen`.
    static func keygen(_ arguments: [String], input: String = "", in directory: URL? = nil) throws -> ProcessResult {
        guard let keygen else { throw MissingProgram(name: "vpnd-keygen (build it with swift build)") }
        return try run(keygen, arguments, input: input, in: directory)
    }
}

/// A program the test needs is not there.
struct MissingProgram: Error, CustomStringConvertible {
    var name: String
    var description: String { "\(name) not found" }
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("vpnd-keygen-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// A deterministic byte source (SplitMix64) so the key sets are the same on every run.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count { withUnsafeBytes(of: next()) { out.append(contentsOf: $0) } }
        return Array(out.prefix(count))
    }
}

/// Unix permission bits of `path`.
func permissions(_ path: String) throws -> Int {
    try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
}
