// SPDX-License-Identifier: MIT

/// An address with a prefix length, such as `10.8.0.1/24` or `fd00::/64`, held inline.
///
/// The address is kept as written, host bits included, because an interface address
/// (`Address = 10.8.0.1/24`) needs them; ``masked`` clears them, which is what a route or an
/// AllowedIPs entry uses. ``contains(_:)`` ignores host bits either way.
public struct IPPrefix: Hashable, Sendable {
    /// The address as written (host bits may be set; see ``masked``).
    public let address: IPAddress
    /// The number of leading bits that form the network: 0...32 for IPv4, 0...128 for IPv6.
    public let length: UInt8

    /// A prefix; nil when `length` exceeds the address's width.
    @inlinable
    public init?(address: IPAddress, length: Int) {
        guard length >= 0 && length <= address.bitWidth else { return nil }
        self.address = address
        self.length = UInt8(length)
    }

    /// The single-address prefix: `/32` for IPv4, `/128` for IPv6.
    @inlinable
    public init(host address: IPAddress) {
        self.address = address
        self.length = UInt8(address.bitWidth)
    }

    /// The same prefix with host bits cleared: `10.8.0.1/24` becomes `10.8.0.0/24`.
    @inlinable
    public var masked: IPPrefix {
        IPPrefix(unchecked: address.masked(toLength: Int(length)), length: length)
    }

    /// True when some bit after the prefix length is set.
    @inlinable
    public var hasHostBits: Bool { address.masked(toLength: Int(length)) != address }

    /// True when `other` is of the same family and its first ``length`` bits equal this prefix's.
    @inlinable
    public func contains(_ other: IPAddress) -> Bool {
        guard other.isIPv4 == address.isIPv4 else { return false }
        return other.masked(toLength: Int(length)) == address.masked(toLength: Int(length))
    }

    @usableFromInline
    init(unchecked address: IPAddress, length: UInt8) {
        self.address = address
        self.length = length
    }
}

extension IPPrefix {
    /// Parses `ADDRESS/LENGTH` or a bare address (a host prefix); nil for anything else.
    ///
    /// The length is decimal without sign or leading zeros and at most the address's width.
    /// Host bits are kept; use ``masked`` for a network.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard let slash = utf8.firstIndex(of: UInt8(ascii: "/")) else {
            guard let address = IPAddress(text) else { return nil }
            self.init(host: address)
            return
        }
        let lengthText = utf8[(slash + 1)...]
        guard !lengthText.isEmpty, lengthText.count <= 3,
            lengthText.count == 1 || lengthText.first != UInt8(ascii: "0")
        else { return nil }
        var length = 0
        for c in lengthText {
            guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") else { return nil }
            length = length * 10 + Int(c - UInt8(ascii: "0"))
        }
        guard let addressText = String(validating: utf8[..<slash], as: UTF8.self),
            let address = IPAddress(addressText)
        else { return nil }
        self.init(address: address, length: length)
    }
}

extension IPPrefix: CustomStringConvertible {
    /// `ADDRESS/LENGTH`, the address as written.
    public var description: String { "\(address)/\(length)" }
}

extension IPPrefix: Comparable {
    /// By address, then by length.
    public static func < (lhs: IPPrefix, rhs: IPPrefix) -> Bool {
        lhs.address < rhs.address || (lhs.address == rhs.address && lhs.length < rhs.length)
    }
}
