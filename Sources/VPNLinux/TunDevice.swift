// SPDX-License-Identifier: MIT
import CLinuxShims
import Glibc
import SystemPackage
import VPNBasics

/// A Linux tun (IP packets) or tap (Ethernet frames) interface, non-blocking, one packet per read
/// or write.
///
/// The device is created when opened and removed by the kernel when the last descriptor closes
/// (on `deinit`), unless it was made persistent by someone else. All stored state is immutable, so
/// one thread may read while another writes.
///
/// Extension point for offloads: `IFF_VNET_HDR` (a virtio-net header in front of every packet),
/// `TUNSETVNETHDRSZ` and `TUNSETOFFLOAD` belong in ``flags(for:)`` and a `virtioHeaderLength`
/// that ``read(into:)`` and ``write(_:)`` then skip/prepend; see DESIGN.md "Data path".
public final class TunDevice: PacketDevice, Sendable {
    /// Which kind of interface to create.
    public enum Mode: Sendable {
        /// Layer 3: IP packets (`IFF_TUN`).
        case tun
        /// Layer 2: Ethernet frames (`IFF_TAP`).
        case tap
    }

    /// The interface name the kernel gave the device (the requested one, or e.g. "tun0" for "tun%d").
    public let name: String
    /// Tun or tap.
    public let mode: Mode
    /// The descriptor of /dev/net/tun attached to the interface.
    public let fileDescriptor: Int32

    public var pollHandle: PollHandle { PollHandle(rawValue: fileDescriptor) }

    /// Opens /dev/net/tun and creates or attaches interface `name`.
    ///
    /// - Parameters:
    ///   - name: the interface name, at most 15 bytes; a `%d` in it lets the kernel pick a number.
    ///   - mode: tun or tap.
    /// - Throws: ``IOError`` naming the step, e.g. "open /dev/net/tun: no such file or directory
    ///   (ENOENT); load the tun module (modprobe tun)".
    ///
    /// The corresponding C calls are `open("/dev/net/tun")` and `ioctl(TUNSETIFF)`.
    public init(name: String = "vpnd0", mode: Mode = .tun) throws(IOError) {
        let operation = "ioctl(TUNSETIFF)"
        guard !name.isEmpty, name.utf8.count < Int(VPND_IFNAMSIZ) else {
            throw .invalid(
                operation, subject: name,
                reason: "interface name is \(name.isEmpty ? "empty" : "too long (\(name.utf8.count) bytes)")",
                hint: "use at most 15 bytes of letters, digits, '-' and '_'")
        }
        guard !name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: " ") || $0 == 0 }) else {
            throw .invalid(
                operation, subject: name, reason: "invalid interface name",
                hint: "use at most 15 bytes of letters, digits, '-' and '_'")
        }
        let fd: Int32
        switch Syscall.retrying({ open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC) }) {
        case .success(let value): fd = value
        case .failure(let errno):
            let hint: String
            switch errno.rawValue {
            case ENOENT, ENODEV, ENXIO:
                hint = "load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
            case EPERM, EACCES: hint = "vpnd needs root or CAP_NET_ADMIN"
            default: hint = IOError.genericHint(errno)
            }
            throw .system("open", subject: "/dev/net/tun", errno: errno, hint: hint)
        }
        var outName = [CChar](repeating: 0, count: Int(VPND_IFNAMSIZ))
        let rc = vpnd_tun_set_iff(fd, name, TunDevice.flags(for: mode), &outName)
        if rc < 0 {
            Syscall.close(fd)
            let errno = Errno(rawValue: -rc)
            let hint: String
            switch errno.rawValue {
            case EBUSY: hint = "interface \(name) is in use by another process (another vpnd?)"
            case EPERM, EACCES: hint = "vpnd needs root or CAP_NET_ADMIN"
            case EINVAL:
                hint = "\(name) may already exist as another kind of interface (tun vs tap, or not a tun at all), "
                    + "or the name is invalid"
            default: hint = IOError.genericHint(errno)
            }
            throw .system(operation, subject: name, errno: errno, hint: hint)
        }
        self.name = String(decoding: outName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.mode = mode
        self.fileDescriptor = fd
    }

    deinit { Syscall.close(fileDescriptor) }

    /// The `TUNSETIFF` flags for `mode`. Offloads add `VPND_IFF_VNET_HDR` here.
    static func flags(for mode: Mode) -> Int32 {
        let kind: Int32 = mode == .tun ? Int32(VPND_IFF_TUN) : Int32(VPND_IFF_TAP)
        return kind | Int32(VPND_IFF_NO_PI)
    }

    /// The interface index (if_nametoindex).
    public func interfaceIndex() throws(IOError) -> Int32 { try Netlink.interfaceIndex(named: name) }

    /// Reads packets into `buffers[0...]`, one read each, until the device has none left or the
    /// buffers are full. Each packet lands in its buffer's tail (headroom kept). Returns how many
    /// were read; 0 when none is ready. Allocates nothing.
    ///
    /// The corresponding C call is `read(2)`, once per packet (tun has no batch read).
    public func read(into buffers: UnsafeMutableBufferPointer<PacketBuffer>) throws(IOError) -> Int {
        var filled = 0
        while filled < buffers.count {
            let tail = buffers[filled].tail
            let result = Syscall.retrying { Glibc.read(fileDescriptor, tail.baseAddress, tail.count) }
            switch result {
            case .success(let n):
                buffers[filled].didWrite(n)
                filled += 1
            case .failure(let errno):
                if Syscall.wouldBlock(errno) || filled > 0 { return filled }
                throw .system("read", subject: name, errno: errno)
            }
        }
        return filled
    }

    /// Writes `buffer`'s bytes as one packet. Returns false when the packet was dropped: the device
    /// would block, or the kernel refused this one packet (`EINVAL`: not a valid IP packet in tun
    /// mode). Throws only when the device itself failed. Allocates nothing on success.
    ///
    /// The corresponding C call is `write(2)`.
    public func write(_ buffer: PacketBuffer) throws(IOError) -> Bool {
        let bytes = buffer.bytes
        let result = Syscall.retrying { Glibc.write(fileDescriptor, bytes.baseAddress, bytes.count) }
        switch result {
        case .success: return true
        case .failure(let errno):
            if Syscall.wouldBlock(errno) || errno == .invalidArgument || errno == .noBufferSpace { return false }
            throw .system("write", subject: name, errno: errno)
        }
    }
}
