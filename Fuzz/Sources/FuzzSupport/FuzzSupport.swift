// SPDX-License-Identifier: MIT
import Glibc

/// One file of a harness's seed corpus: its name and its bytes.
public struct Seed {
    /// The file name inside the corpus directory.
    public var name: String
    /// The file's contents: exactly one fuzz input.
    public var bytes: [UInt8]

    /// A seed named `name` holding `bytes`.
    public init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

/// Writes `seeds()` into the directory named by `VPND_FUZZ_WRITE_SEEDS` and exits, when that
/// variable is set; returns otherwise. Call it from `LLVMFuzzerInitialize`.
///
/// The seeds come from the same deterministic world the harness fuzzes, so messages in them
/// authenticate against it: `scripts/fuzz seeds` regenerates `Tests/Fuzz/` this way.
public func writeSeedsIfAsked(_ seeds: () -> [Seed]) {
    guard let variable = getenv("VPND_FUZZ_WRITE_SEEDS") else { return }
    let directory = String(cString: variable)
    mkdir(directory, 0o755)
    let list = seeds()
    for seed in list {
        let path = directory + "/" + seed.name
        guard let file = fopen(path, "wb") else {
            printError("cannot write \(path): errno \(errno)\n")
            exit(1)
        }
        let written = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
        guard written == seed.bytes.count else {
            printError("short write to \(path)\n")
            exit(1)
        }
    }
    printError("wrote \(list.count) seeds to \(directory)\n")
    exit(0)
}

/// Stops the process with `message` on stderr: a broken invariant is a finding, and libFuzzer
/// saves the input that caused it (an abort, like a trap).
public func invariant(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    guard !condition() else { return }
    printError("INVARIANT BROKEN: \(message())\n")
    abort()
}

/// A cursor over one fuzz input: control bytes first, then the rest as the payload.
public struct FuzzInput {
    /// The whole input.
    public let bytes: UnsafeRawBufferPointer
    /// The offset of the first unread byte.
    public private(set) var offset = 0

    /// A cursor over `size` bytes at `data`.
    public init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: size)
    }

    /// The next byte, or 0 when the input is exhausted.
    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Everything not read yet.
    public var rest: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[min(offset, bytes.count)...])
    }
}

/// Writes `text` to standard error (file descriptor 2), unbuffered.
public func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// The callback libFuzzer runs for each input.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

/// The body of a harness's `main`: writes the seed corpus when `VPND_FUZZ_WRITE_SEEDS` is set,
/// else hands the command line to libFuzzer's driver with `callback` as the fuzz target.
///
/// SwiftPM links an executable target's `main` to the symbol `<Target>_main`, so each harness
/// defines that (with `@_cdecl`) and calls this; libFuzzer's own `main` is then not linked.
public func runFuzzer(
    argc: CInt, argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, seeds: () -> [Seed],
    callback: FuzzCallback
) -> CInt {
    writeSeedsIfAsked(seeds)
    var argc = argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&argc, &argv, callback)
}
