// SPDX-License-Identifier: MIT
import VPNBasics

/// Builders and readers of the inner packets tests push through a tunnel: IPv4 and IPv6 packets
/// with given addresses and payload, and Ethernet frames for tap mode.
public enum TestPackets {
    /// An IPv4 packet (20-byte header, protocol 253 "experimental", valid header checksum) from
    /// `source` to `destination` carrying `payload`.
    public static func ipv4(from source: IPAddress, to destination: IPAddress, payload: [UInt8],
                            identification: UInt16 = 0) -> [UInt8] {
        precondition(source.isIPv4 && destination.isIPv4, "TestPackets.ipv4 needs IPv4 addresses")
        let total = 20 + payload.count
        precondition(total <= 65535, "an IPv4 packet has at most 65535 bytes")
        var header: [UInt8] = [
            0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF),
            UInt8(identification >> 8), UInt8(identification & 0xFF), 0x40, 0,
            64, 253, 0, 0,
        ]
        header += source.bytes
        header += destination.bytes
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(header[i]) << 8 | UInt32(header[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xFF)
        return header + payload
    }

    /// An IPv6 packet (next header 253) from `source` to `destination` carrying `payload`.
    public static func ipv6(from source: IPAddress, to destination: IPAddress, payload: [UInt8]) -> [UInt8] {
        precondition(!source.isIPv4 && !destination.isIPv4, "TestPackets.ipv6 needs IPv6 addresses")
        let length = payload.count
        var header: [UInt8] = [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 253, 64]
        header += source.bytes
        header += destination.bytes
        return header + payload
    }

    /// An Ethernet II frame: destination MAC, source MAC, EtherType, payload (no FCS).
    public static func ethernet(destination: [UInt8], source: [UInt8], etherType: UInt16 = 0x0800,
                                payload: [UInt8]) -> [UInt8] {
        precondition(destination.count == 6 && source.count == 6, "a MAC address has 6 bytes")
        return destination + source + [UInt8(etherType >> 8), UInt8(etherType & 0xFF)] + payload
    }

    /// The payload of an IPv4 (20-byte header) or IPv6 packet, or nil for anything else.
    public static func ipPayload(of packet: [UInt8]) -> [UInt8]? {
        guard let first = packet.first else { return nil }
        switch first >> 4 {
        case 4:
            guard packet.count >= 20 else { return nil }
            let headerLength = Int(first & 0x0F) * 4
            let total = Int(packet[2]) << 8 | Int(packet[3])
            guard headerLength >= 20, total >= headerLength, total <= packet.count else { return nil }
            return Array(packet[headerLength..<total])
        case 6:
            guard packet.count >= 40 else { return nil }
            let total = 40 + (Int(packet[4]) << 8 | Int(packet[5]))
            guard total <= packet.count else { return nil }
            return Array(packet[40..<total])
        default:
            return nil
        }
    }

    /// A payload that identifies packet `sequence` of a stream: the sequence number (8 bytes,
    /// big-endian), then `count` − 8 bytes derived from it.
    public static func numberedPayload(_ sequence: UInt64, count: Int = 64) -> [UInt8] {
        precondition(count >= 8, "a numbered payload has at least 8 bytes")
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: sequence >> (56 - 8 * UInt64($0))) }
        for i in 8..<count { bytes.append(UInt8(truncatingIfNeeded: sequence &* 31 &+ UInt64(i))) }
        return bytes
    }

    /// The sequence number of a ``numberedPayload(_:count:)``, or nil when `payload` is not one.
    public static func sequence(ofNumberedPayload payload: [UInt8]) -> UInt64? {
        guard payload.count >= 8 else { return nil }
        let sequence = payload[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return payload == numberedPayload(sequence, count: payload.count) ? sequence : nil
    }
}
