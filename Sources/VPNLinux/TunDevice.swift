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
/// Offloads: opened with a non-empty ``TunOffloads`` set, the device carries a 10-byte virtio-net
/// header (`IFF_VNET_HDR`, little-endian fields) in front of every packet, in both directions, and
/// the kernel may hand over super-packets of up to 64 KiB (``activeOffloads`` says which kinds).
/// Then every ``read(into:)`` returns a frame `[header][packet]` and every ``write(_:)`` expects one;
/// ``virtioHeaderLength`` is 10. Size read buffers for the largest frame,
/// ``maximumFrameLength`` bytes of tailroom. Without offloads, ``virtioHeaderLength`` is 0 and
/// frames are bare packets.
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
    /// The offloads the kernel accepted (empty without a virtio-net header).
    public let activeOffloads: TunOffloads
    /// The bytes of virtio-net header in front of every packet read or written: 10 with offloads,
    /// else 0.
    public let virtioHeaderLength: Int
    /// Why fewer offloads are active than were asked for, e.g. "TUNSETOFFLOAD csum tso4 tso6 uso4
    /// uso6: invalid argument (EINVAL)"; empty when all were accepted or none asked for.
    public let offloadFallbackReason: String

    /// The longest frame a read can return: header, a 65535-byte IP packet and, on tap, an
    /// Ethernet header with a VLAN tag.
    public var maximumFrameLength: Int { virtioHeaderLength + 65535 + (mode == .tap ? 18 : 0) }

    /// The start-up log line, e.g. "tun offloads: csum tso4 tso6 uso4 uso6" or
    /// "tap offloads: none (TUNSETOFFLOAD ...: invalid argument (EINVAL))".
    public var offloadSummary: String {
        let kind = mode == .tun ? "tun" : "tap"
        let head = "\(kind) offloads: \(activeOffloads)"
        return offloadFallbackReason.isEmpty ? head : "\(head) (fell back: \(offloadFallbackReason))"
    }

    public var pollHandle: PollHandle { PollHandle(rawValue: fileDescriptor) }

    /// Opens /dev/net/tun and creates or attaches interface `name`.
    ///
    /// With a non-empty `offloads` the device is opened with a virtio-net header and the kernel is
    /// told which offloads vpnd handles. A set the kernel refuses falls back step by step: without
    /// USO, then checksum only, then no virtio-net header at all (the device is reopened); the
    /// result is in ``activeOffloads``, ``virtioHeaderLength`` and ``offloadFallbackReason``.
    ///
    /// - Parameters:
    ///   - name: the interface name, at most 15 bytes; a `%d` in it lets the kernel pick a number.
    ///   - mode: tun or tap.
    ///   - offloads: the offloads to ask for; empty (the default) opens a plain device.
    /// - Throws: ``IOError`` naming the step, e.g. "open /dev/net/tun: no such file or directory
    ///   (ENOENT); load the tun module (modprobe tun)".
    ///
    /// The corresponding C calls are `open("/dev/net/tun")`, `ioctl(TUNSETIFF)`, and with offloads
    /// `ioctl(TUNGETFEATURES)`, `ioctl(TUNSETVNETHDRSZ)`, `ioctl(TUNSETVNETLE)` and
    /// `ioctl(TUNSETOFFLOAD)`.
    public init(name: String = "vpnd0", mode: Mode = .tun, offloads: TunOffloads = []) throws(IOError) {
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
        let chain = offloads.fallbackChain
        var reason = ""
        if !chain.isEmpty {
            let (fd, givenName, hasHeader) = try TunDevice.openAttached(
                name: name, flags: TunDevice.flags(for: mode), virtioHeader: true)
            if hasHeader {
                let (active, refusals) = TunDevice.configureOffloads(fd, name: givenName, chain: chain)
                if let active {
                    self.name = givenName
                    self.mode = mode
                    self.fileDescriptor = fd
                    self.activeOffloads = active
                    self.virtioHeaderLength = Int(VPND_VIRTIO_NET_HDR_LEN)
                    self.offloadFallbackReason = refusals
                    return
                }
                // Close (the kernel removes the fresh interface) and reopen without the header.
                Syscall.close(fd)
                reason = refusals
            } else {
                self.name = givenName
                self.mode = mode
                self.fileDescriptor = fd
                self.activeOffloads = []
                self.virtioHeaderLength = 0
                self.offloadFallbackReason = "this tun driver has no IFF_VNET_HDR"
                return
            }
        }
        let (fd, givenName, _) = try TunDevice.openAttached(
            name: name, flags: TunDevice.flags(for: mode), virtioHeader: false)
        self.name = givenName
        self.mode = mode
        self.fileDescriptor = fd
        self.activeOffloads = []
        self.virtioHeaderLength = 0
        self.offloadFallbackReason = reason
    }

    deinit { Syscall.close(fileDescriptor) }

    /// The `TUNSETIFF` flags for `mode`, without the virtio-net header.
    static func flags(for mode: Mode) -> Int32 {
        let kind: Int32 = mode == .tun ? Int32(VPND_IFF_TUN) : Int32(VPND_IFF_TAP)
        return kind | Int32(VPND_IFF_NO_PI)
    }

    /// Opens /dev/net/tun and attaches it to `name` with `flags`, plus `IFF_VNET_HDR` when
    /// `virtioHeader` is set and the driver supports it. Returns the descriptor, the kernel's name
    /// for the interface and whether the header is on.
    private static func openAttached(
        name: String, flags: Int32, virtioHeader: Bool
    ) throws(IOError) -> (Int32, String, Bool) {
        let operation = "ioctl(TUNSETIFF)"
        let fd: Int32
        switch Syscall.retrying({ open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC) }) {
        case .success(let value): fd = value
        case .failure(let errno):
            let hint: String
            switch errno.rawValue {
            case ENOENT, ENODEV, ENXIO:
                hint = "load the tun module (modprobe tun) or create the node (mknod /dev/net/tun c 10 200)"
            case EACCES where geteuid() != 0:
                // The node's mode, not a capability: CAP_NET_ADMIN does not open a file.
                hint = "this user may not open /dev/net/tun (it is normally mode 0666: chmod 666 /dev/net/tun); "
                    + "or start vpnd as root with User = NAME to drop privileges after set-up"
            case EPERM, EACCES: hint = "vpnd needs root or CAP_NET_ADMIN"
            default: hint = IOError.genericHint(errno)
            }
            throw .system("open", subject: "/dev/net/tun", errno: errno, hint: hint)
        }
        var flags = flags
        if virtioHeader {
            var features: UInt32 = 0
            if vpnd_tun_get_features(fd, &features) == 0, features & UInt32(VPND_IFF_VNET_HDR) != 0 {
                flags |= Int32(VPND_IFF_VNET_HDR)
            }
        }
        var outName = [CChar](repeating: 0, count: Int(VPND_IFNAMSIZ))
        let rc = vpnd_tun_set_iff(fd, name, flags, &outName)
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
        let given = String(decoding: outName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (fd, given, flags & Int32(VPND_IFF_VNET_HDR) != 0)
    }

    /// Sets the header size and byte order and the first offload set of `chain` the kernel accepts.
    /// Returns that set (nil when none was accepted) and what the kernel refused on the way.
    private static func configureOffloads(
        _ fd: Int32, name: String, chain: [TunOffloads]
    ) -> (TunOffloads?, String) {
        let sized = vpnd_tun_set_vnet_hdr_size(fd, Int32(VPND_VIRTIO_NET_HDR_LEN))
        if sized < 0 {
            return (nil, "ioctl(TUNSETVNETHDRSZ) \(name): \(IOError.reason(-sized))")
        }
        // Little-endian header fields on every host (a no-op on little-endian ones); kernels without
        // TUNSETVNETLE run only where the native order is little-endian anyway.
        _ = vpnd_tun_set_vnet_le(fd, 1)
        var refusals: [String] = []
        for candidate in chain {
            let rc = vpnd_tun_set_offload(fd, candidate.rawValue)
            if rc == 0 { return (candidate, refusals.joined(separator: "; ")) }
            refusals.append("ioctl(TUNSETOFFLOAD) '\(candidate)': \(IOError.reason(-rc))")
        }
        return (nil, refusals.joined(separator: "; "))
    }

    /// The interface index (if_nametoindex).
    public func interfaceIndex() throws(IOError) -> Int32 { try Netlink.interfaceIndex(named: name) }

    /// Reads packets into `buffers[0...]`, one read each, until the device has none left or the
    /// buffers are full. Each packet lands in its buffer's tail (headroom kept). Returns how many
    /// were read; 0 when none is ready. Allocates nothing.
    ///
    /// With offloads (``virtioHeaderLength`` 10) each buffer receives a frame: the virtio-net header,
    /// then the packet, possibly a super-packet of up to 64 KiB to be split by the caller. Each
    /// buffer then needs ``maximumFrameLength`` bytes of tailroom (a precondition: the kernel would
    /// silently cut a super-packet to a shorter buffer).
    ///
    /// The corresponding C call is `read(2)`, once per packet (tun has no batch read).
    public func read(into buffers: UnsafeMutableBufferPointer<PacketBuffer>) throws(IOError) -> Int {
        var filled = 0
        while filled < buffers.count {
            let tail = buffers[filled].tail
            if virtioHeaderLength > 0 {
                precondition(
                    tail.count >= maximumFrameLength,
                    "TunDevice with offloads needs read buffers with maximumFrameLength bytes of tailroom")
            }
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
    /// mode, or a virtio-net header it cannot honour). Throws only when the device itself failed.
    /// Allocates nothing on success.
    ///
    /// With offloads (``virtioHeaderLength`` 10) `buffer` must hold a frame: a virtio-net header
    /// (all zero for a plain, fully checksummed packet; or a GSO type and size for a super-packet the
    /// kernel is to segment or deliver whole), then the packet.
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
