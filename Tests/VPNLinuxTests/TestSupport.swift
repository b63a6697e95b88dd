// SPDX-License-Identifier: MIT
import CLinuxShims
import Foundation
import Glibc
import Synchronization
import Testing
import VPNBasics

/// Packet buffers over one slab, for tests.
final class TestBuffers {
    let slab: PacketSlab
    let buffers: UnsafeMutableBufferPointer<PacketBuffer>
    static let headroom = 32

    init(count: Int, slotSize: Int = 2048) {
        slab = PacketSlab(slotSize: slotSize, slotCount: count)
        buffers = .allocate(capacity: count)
        for i in 0..<count { buffers[i] = slab.buffer(i, headroom: TestBuffers.headroom) }
    }

    func reset() { for i in 0..<buffers.count { buffers[i].reset(headroom: TestBuffers.headroom) } }

    deinit { buffers.deallocate() }
}

extension PacketBuffer {
    var byteArray: [UInt8] { Array(UnsafeRawBufferPointer(bytes)) }
}

/// Environment facts for the privileged (netns) tests.
enum Privilege {
    /// True when running as root with /dev/net/tun present.
    static var available: Bool { getuid() == 0 && access("/dev/net/tun", F_OK) == 0 }
    /// True under CI=true, where a test that cannot run must fail.
    static var required: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    /// Whether a privileged test should run at all (it fails inside under CI=true without root).
    static var shouldRun: Bool { available || required }
    static let reason: Comment = "needs root and /dev/net/tun (skipped; under CI=true it fails instead)"
}

/// Runs `ip ARGS`; returns stdout, throws on a non-zero exit.
@discardableResult
func runIP(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    if !FileManager.default.fileExists(atPath: "/usr/sbin/ip") {
        process.executableURL = URL(fileURLWithPath: "/sbin/ip")
    }
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    let errorData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        struct IPFailed: Error, CustomStringConvertible { var description: String }
        throw IPFailed(
            description: "ip \(arguments.joined(separator: " ")): \(String(decoding: errorData, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
}

/// Parses `ip -j ...` output.
func ipJSON(_ arguments: [String]) throws -> [[String: Any]] {
    let text = try runIP(["-j"] + arguments)
    return (try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]]) ?? []
}

private let namespaceCounter = Mutex(0)

/// A fresh network namespace for one test, deleted afterwards.
///
/// `run` executes `body` on a new OS thread moved into the namespace with setns(CLONE_NEWNET), so
/// every socket, netlink socket and tun device it opens lives there and nothing touches the root
/// namespace; the thread moves back and exits afterwards.
struct TestNamespace {
    let name: String

    static func make() throws -> TestNamespace {
        let n = namespaceCounter.withLock { value in
            value += 1
            return value
        }
        let name = "vpnd-lt-\(getpid())-\(n)"
        try runIP(["netns", "add", name])
        return TestNamespace(name: name)
    }

    func delete() { _ = try? runIP(["netns", "del", name]) }

    /// `ip -n NAME ARGS` with JSON output.
    func ipJSON(_ arguments: [String]) throws -> [[String: Any]] {
        try VPNLinuxTests.ipJSON(["-n", name] + arguments)
    }

    func ip(_ arguments: [String]) throws { try runIP(["-n", name] + arguments) }

    /// Runs `body` on a dedicated thread inside the namespace and returns its result.
    ///
    /// Swift Testing attributes `#expect` to a test only on the test's own task, so `body` records
    /// its checks in a ``ThreadChecks``; they are reported as issues of the test afterwards.
    func run<T: Sendable>(_ body: @escaping @Sendable (ThreadChecks) throws -> T) async throws -> T {
        let path = "/var/run/netns/\(name)"
        let checks = ThreadChecks()
        defer { checks.report() }
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
                let target = open(path, O_RDONLY | O_CLOEXEC)
                defer {
                    if original >= 0 {
                        _ = vpnd_enter_network_namespace(original)
                        close(original)
                    }
                    if target >= 0 { close(target) }
                }
                guard original >= 0, target >= 0, vpnd_enter_network_namespace(target) == 0 else {
                    continuation.resume(throwing: SetnsFailed(description: "cannot enter network namespace \(path)"))
                    return
                }
                continuation.resume(with: Result { try body(checks) })
            }
            thread.start()
        }
    }
}

/// Expectations made on a thread that is not the test's task, reported by the test afterwards.
final class ThreadChecks: Sendable {
    private let failures = Mutex<[(String, SourceLocation)]>([])

    /// Records a failure when `condition` is false.
    func expect(
        _ condition: @autoclosure () throws -> Bool, _ message: @autoclosure () -> String = "",
        fileID: String = #fileID, filePath: String = #filePath, line: Int = #line, column: Int = #column
    ) rethrows {
        if try !condition() {
            fail("expectation failed \(message())", fileID: fileID, filePath: filePath, line: line, column: column)
        }
    }

    /// Like ``expect(_:_:fileID:filePath:line:column:)`` but stops the body by throwing.
    func require(
        _ condition: @autoclosure () throws -> Bool, _ message: @autoclosure () -> String = "",
        fileID: String = #fileID, filePath: String = #filePath, line: Int = #line, column: Int = #column
    ) throws {
        if try !condition() {
            fail("requirement failed \(message())", fileID: fileID, filePath: filePath, line: line, column: column)
            throw SetnsFailed(description: "requirement failed at line \(line): \(message())")
        }
    }

    /// Records a failure.
    func fail(
        _ message: String, fileID: String = #fileID, filePath: String = #filePath, line: Int = #line,
        column: Int = #column
    ) {
        let location = SourceLocation(fileID: fileID, filePath: filePath, line: line, column: column)
        failures.withLock { $0.append((message, location)) }
    }

    /// Reports the recorded failures as issues of the current test.
    func report() {
        for (message, location) in failures.withLock({ $0 }) {
            Issue.record(Comment(rawValue: message), sourceLocation: location)
        }
    }
}

struct SetnsFailed: Error, CustomStringConvertible { var description: String }

/// Seconds elapsed since `start` on the monotonic clock.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}
