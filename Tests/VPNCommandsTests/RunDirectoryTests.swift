// SPDX-License-Identifier: MIT
import Glibc
import Testing
import VPNBasics
import VPNLinux
@testable import VPNCommands
import VPNCrypto

/// The run directory may belong to the unprivileged account after a `User =` run while vpnd, as
/// root, reads `NAME.endpoints` and creates `NAME.sock` there: nothing in it is followed, waited
/// on or read without bound.
@Suite("Run directory hygiene")
struct RunDirectoryTests {
    /// A fresh private directory under /tmp, removed (with what is in it) by `cleanUp`.
    final class Directory {
        let path: String
        init() {
            var template = Array("/tmp/vpnd-rundir-test.XXXXXX".utf8CString)
            path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        }
        deinit {
            for name in Posix.directoryEntries(path) ?? [] { unlink(path + "/" + name) }
            rmdir(path)
        }
        func write(_ name: String, _ text: String) {
            let fd = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            precondition(fd >= 0)
            Posix.writeAll(fd, Array(text.utf8))
            close(fd)
        }
        func read(_ name: String) -> String? {
            if case .text(let text) = Posix.readOwnFile(path + "/" + name, maxBytes: 1 << 22) { return text }
            return nil
        }
    }

    static let peer: Bytes32 = Bytes32([UInt8](repeating: 7, count: 32))!
    static let line = "\(KeyEncoding.encode(peer)) 192.0.2.1:51820\n"

    static func mode(_ path: String, followLinks: Bool = false) -> (type: mode_t, permissions: mode_t)? {
        var info = stat()
        guard (followLinks ? stat(path, &info) : lstat(path, &info)) == 0 else { return nil }
        return (info.st_mode & S_IFMT, info.st_mode & 0o7777)
    }

    @Test("a regular endpoints file round-trips, mode 0600")
    func roundTrip() {
        let dir = Directory()
        let memory = EndpointMemory(directory: dir.path, interfaceName: "vpn0")
        #expect(memory.load().endpoints.isEmpty && memory.load().warning == nil)
        #expect(memory.save([Self.peer: Endpoint(ipv4: 192, 0, 2, 1, port: 51820)]))
        let loaded = memory.load()
        #expect(loaded.warning == nil)
        #expect(loaded.endpoints == [Self.peer: Endpoint(ipv4: 192, 0, 2, 1, port: 51820)])
        #expect(Self.mode(memory.path)?.type == S_IFREG)
        #expect(Self.mode(memory.path)?.permissions == 0o600)
        #expect(Self.mode(memory.path + ".tmp") == nil)
    }

    @Test("a symbolic link at NAME.endpoints is not followed, and warned about in one line")
    func symlinkNotFollowed() {
        let dir = Directory()
        dir.write("elsewhere", Self.line)
        symlink(dir.path + "/elsewhere", dir.path + "/vpn0.endpoints")
        let memory = EndpointMemory(directory: dir.path, interfaceName: "vpn0")
        let loaded = memory.load()
        #expect(loaded.endpoints.isEmpty)
        let warning = loaded.warning ?? ""
        #expect(warning.contains(memory.path) && warning.contains("symbolic link"))
        #expect(!warning.contains("\n"))
    }

    @Test("a file over 1 MiB is refused with one line naming it and the fix")
    func oversized() {
        let dir = Directory()
        let lines = (EndpointMemory.maximumSize / Self.line.utf8.count) + 1
        dir.write("vpn0.endpoints", String(repeating: Self.line, count: lines))
        let memory = EndpointMemory(directory: dir.path, interfaceName: "vpn0")
        let loaded = memory.load()
        #expect(loaded.endpoints.isEmpty)
        let warning = loaded.warning ?? ""
        #expect(warning.contains(memory.path) && warning.contains("larger than 1048576 bytes") && warning.contains("delete it"))
        #expect(!warning.contains("\n"))
        // Just under the limit is read.
        dir.write("vpn0.endpoints", String(repeating: Self.line, count: lines - 1))
        #expect(memory.load().endpoints.count == 1)
    }

    @Test("a FIFO at NAME.endpoints does not hang the read")
    func fifoDoesNotHang() {
        let dir = Directory()
        let path = dir.path + "/vpn0.endpoints"
        #expect(mkfifo(path, 0o600) == 0)
        final class Result: @unchecked Sendable { var loaded: EndpointMemory.Loaded? }
        let result = Result()
        let done = Semaphore()
        let memory = EndpointMemory(directory: dir.path, interfaceName: "vpn0")
        startThread(name: "fifo-test") {
            result.loaded = memory.load()
            done.signal()
        }
        let finished = done.wait(seconds: 5)
        #expect(finished, "load() blocked on a FIFO")
        if !finished {
            // Release the blocked reader so the test process can go on.
            let writer = open(path, O_WRONLY | O_NONBLOCK)
            if writer >= 0 { close(writer) }
            done.wait()
        }
        #expect(result.loaded?.endpoints.isEmpty == true)
        #expect(result.loaded?.warning?.contains("not a regular file") == true)
    }

    @Test("saving replaces a planted link instead of writing through it (at NAME.endpoints and NAME.endpoints.tmp)")
    func saveDoesNotFollowLinks() {
        let dir = Directory()
        dir.write("victim", "untouched\n")
        symlink(dir.path + "/victim", dir.path + "/vpn0.endpoints")
        symlink(dir.path + "/victim", dir.path + "/vpn0.endpoints.tmp")
        let memory = EndpointMemory(directory: dir.path, interfaceName: "vpn0")
        #expect(memory.save([Self.peer: Endpoint(ipv4: 192, 0, 2, 1, port: 51820)]))
        #expect(dir.read("victim") == "untouched\n")
        #expect(Self.mode(memory.path)?.type == S_IFREG)
        #expect(Self.mode(memory.path)?.permissions == 0o600)
        #expect(dir.read("vpn0.endpoints") == Self.line)
        #expect(Self.mode(memory.path + ".tmp") == nil)
    }

    @Test("the control socket file is created mode 0600 by bind itself (no chmod), and the umask is restored")
    func socketMode() throws {
        let dir = Directory()
        let path = dir.path + "/vpn0.sock"
        let before = umask(0o022)
        umask(0o022)
        let server = try UnixStreamServer(path: path, directory: dir.path)
        defer { server.discard() }
        let after = umask(before)
        #expect(after == 0o022)
        #expect(Self.mode(path)?.type == S_IFSOCK)
        #expect(Self.mode(path)?.permissions == 0o600)
    }
}
