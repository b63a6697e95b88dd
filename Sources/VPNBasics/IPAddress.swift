// SPDX-License-Identifier: MIT

/// An IPv4 or IPv6 address held inline as its numeric value (no allocation).
///
/// `.v4(0x0A08_0001)` is `10.8.0.1`; `.v6(high, low)` holds the first and last 64 bits of the
/// address, most significant bit first. The family is kept: `::ffff:10.8.0.1` written as IPv6
/// text stays `.v6`, while ``init(mapped:)`` (the 16-byte form of ``Endpoint``) turns an
/// IPv4-mapped address into `.v4`. Text parsing is strict: dotted quads need exactly four decimal
/// octets without leading zeros, and IPv6 zones (`fe80::1%eth0`) are not accepted.
public enum IPAddress: Hashable, Sendable {
    /// An IPv4 address; `a.b.c.d` is `a << 24 | b << 16 | c << 8 | d`.
    case v4(UInt32)
    /// An IPv6 address as its high and low 64 bits.
    case v6(UInt64, UInt64)

    /// An IPv4 address from four octets.
    @inlinable
    public init(ipv4 a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self = .v4(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    /// An address from the 16-byte form used by ``Endpoint/address``: bytes in network order,
    /// IPv4-mapped (`::ffff:a.b.c.d`) for IPv4, which becomes `.v4`.
    @inlinable
    public init(mapped storage: (UInt64, UInt64)) {
        let high = UInt64(bigEndian: storage.0)
        let low = UInt64(bigEndian: storage.1)
        if high == 0 && low >> 32 == 0xFFFF {
            self = .v4(UInt32(truncatingIfNeeded: low))
        } else {
            self = .v6(high, low)
        }
    }

    /// The 16-byte form used by ``Endpoint/address``: bytes in network order, IPv4-mapped for IPv4.
    @inlinable
    public var mapped: (UInt64, UInt64) {
        switch self {
        case .v4(let value): return (UInt64(0).bigEndian, (0xFFFF << 32 | UInt64(value)).bigEndian)
        case .v6(let high, let low): return (high.bigEndian, low.bigEndian)
        }
    }

    /// True for `.v4`.
    @inlinable
    public var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The number of bits: 32 for IPv4, 128 for IPv6.
    @inlinable
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6 (control plane only).
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                    UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
        case .v6(let high, let low):
            var out: [UInt8] = []
            out.reserveCapacity(16)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
            return out
        }
    }

    /// An address from 4 (IPv4) or 16 (IPv6) bytes in network order; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4:
            self = .v4(bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16:
            var high: UInt64 = 0, low: UInt64 = 0
            for (i, byte) in bytes.enumerated() {
                if i < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            self = .v6(high, low)
        default:
            return nil
        }
    }

    /// The address with every bit after the first `length` set to zero (`length` is clamped to the width).
    @inlinable
    public func masked(toLength length: Int) -> IPAddress {
        switch self {
        case .v4(let value):
            if length <= 0 { return .v4(0) }
            if length >= 32 { return self }
            return .v4(value & ~(UInt32.max >> UInt32(length)))
        case .v6(let high, let low):
            if length <= 0 { return .v6(0, 0) }
            if length >= 128 { return self }
            if length <= 64 {
                let h = length == 64 ? high : high & ~(UInt64.max >> UInt64(length))
                return .v6(h, 0)
            }
            return .v6(high, low & ~(UInt64.max >> UInt64(length - 64)))
        }
    }
}

extension IPAddress: Comparable {
    /// IPv4 before IPv6, then by numeric value.
    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): return a < b
        case (.v4, .v6): return true
        case (.v6, .v4): return false
        case (.v6(let ah, let al), .v6(let bh, let bl)): return ah < bh || (ah == bh && al < bl)
        }
    }
}

// MARK: - Parsing

extension IPAddress {
    /// Parses a dotted-quad IPv4 address or an IPv6 address (with `::` and an optional trailing
    /// dotted quad); nil for anything else, including surrounding spaces, zones and prefixes.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = Self.parseIPv6(utf8[...]) else { return nil }
            self = .v6(high, low)
        } else {
            guard let value = Self.parseIPv4(utf8[...]) else { return nil }
            self = .v4(value)
        }
    }

    /// Four decimal octets separated by dots, each 0...255 without leading zeros.
    static func parseIPv4(_ text: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var octet: UInt32 = 0
        var digits = 0
        var leadingZero = false
        for c in text {
            if c == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | octet
                parts += 1
                octet = 0
                digits = 0
                leadingZero = false
            } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                guard !leadingZero, digits < 3 else { return nil }
                if digits == 0 && c == UInt8(ascii: "0") { leadingZero = true }
                octet = octet * 10 + UInt32(c - UInt8(ascii: "0"))
                guard octet <= 255 else { return nil }
                digits += 1
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return value << 8 | octet
    }

    /// Colon-separated groups of 1 to 4 hex digits, at most one `::` standing for one or more
    /// zero groups, and optionally a dotted quad as the last 32 bits.
    static func parseIPv6(_ text: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        let colon = UInt8(ascii: ":")
        // Locate the single "::", if any.
        var gap: Int? = nil
        var i = text.startIndex
        while i + 1 < text.endIndex {
            if text[i] == colon && text[i + 1] == colon {
                guard gap == nil else { return nil }
                gap = i
                i += 2
                // ":::" is never valid.
                if i < text.endIndex && text[i] == colon { return nil }
                continue
            }
            i += 1
        }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        if let gap {
            guard Self.parseGroups(text[text.startIndex..<gap], allowIPv4: false, into: &head),
                Self.parseGroups(text[(gap + 2)...], allowIPv4: true, into: &tail),
                head.count + tail.count <= 7
            else { return nil }
        } else {
            guard Self.parseGroups(text, allowIPv4: true, into: &head), head.count == 8 else { return nil }
        }
        var groups = head
        if gap != nil {
            groups += [UInt16](repeating: 0, count: 8 - head.count - tail.count)
            groups += tail
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (n, g) in groups.enumerated() {
            if n < 4 { high = high << 16 | UInt64(g) } else { low = low << 16 | UInt64(g) }
        }
        return (high, low)
    }

    /// Appends the groups of `text` (no "::" inside) to `groups`; an empty `text` adds none.
    private static func parseGroups(_ text: ArraySlice<UInt8>, allowIPv4: Bool, into groups: inout [UInt16]) -> Bool {
        if text.isEmpty { return true }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        for (n, part) in parts.enumerated() {
            if n == parts.count - 1 && allowIPv4 && part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(part) else { return false }
                groups.append(UInt16(v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                continue
            }
            guard (1...4).contains(part.count) else { return false }
            var value: UInt16 = 0
            for c in part {
                guard let digit = hexValue(c) else { return false }
                value = value << 4 | UInt16(digit)
            }
            groups.append(value)
        }
        return groups.count <= 8
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

// MARK: - Formatting

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lower case, no leading zeros, the longest
    /// run of two or more zero groups shown as `::`, IPv4-mapped as `::ffff:a.b.c.d`).
    public var description: String {
        switch self {
        case .v4(let value):
            return Self.dottedQuad(value)
        case .v6(let high, let low):
            if high == 0 && low >> 32 == 0xFFFF {
                return "::ffff:" + Self.dottedQuad(UInt32(truncatingIfNeeded: low))
            }
            var groups: [UInt16] = []
            for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
            for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
            // The longest run of zero groups, the first on a tie, only if at least two long.
            var bestStart = -1, bestLength = 1
            var n = 0
            while n < 8 {
                if groups[n] == 0 {
                    var end = n
                    while end < 8 && groups[end] == 0 { end += 1 }
                    if end - n > bestLength { bestStart = n; bestLength = end - n }
                    n = end
                } else {
                    n += 1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                groups[range].map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    private static func dottedQuad(_ value: UInt32) -> String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }
}

// MARK: - Endpoint

extension Endpoint {
    /// An endpoint from an address and a port (IPv4 is stored mapped).
    @inlinable
    public init(_ address: IPAddress, port: UInt16, scopeID: UInt32 = 0) {
        self.init(address: address.mapped, port: port, scopeID: scopeID)
    }

    /// The endpoint's address (`.v4` for an IPv4-mapped address).
    @inlinable
    public var ipAddress: IPAddress { IPAddress(mapped: address) }

    /// Parses a literal `a.b.c.d:port` or `[v6]:port` (port 1...65535); nil for anything else,
    /// including host names, which the daemon resolves (see VPNCore's `EndpointSpec`).
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard let colon = utf8.lastIndex(of: UInt8(ascii: ":")), colon + 1 < utf8.count else { return nil }
        var port: UInt32 = 0
        let portText = utf8[(colon + 1)...]
        guard portText.count <= 5, portText.first != UInt8(ascii: "0") else { return nil }
        for c in portText {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            port = port * 10 + UInt32(c - UInt8(ascii: "0"))
        }
        guard port >= 1 && port <= 65535 else { return nil }
        let host = utf8[..<colon]
        let address: IPAddress
        if host.first == UInt8(ascii: "[") {
            guard host.count > 2, host.last == UInt8(ascii: "]"),
                let (high, low) = IPAddress.parseIPv6(host.dropFirst().dropLast())
            else { return nil }
            address = .v6(high, low)
        } else {
            guard let value = IPAddress.parseIPv4(host) else { return nil }
            address = .v4(value)
        }
        self.init(address, port: UInt16(port))
    }
}
