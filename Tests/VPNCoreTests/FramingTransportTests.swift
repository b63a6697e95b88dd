// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

@Suite("Transport data seal and open")
struct FramingTransportTests {
    @Test("seal then open restores the padded plaintext", arguments: [0, 1, 15, 16, 17, 1420])
    func roundTrip(size: Int) throws {
        var entropy = SeededEntropy(seed: UInt64(size) &+ 7)
        let plaintext = entropy.bytes(size)
        let slot = TestSlot()
        var buffer = slot.buffer(plaintext, headroom: TransportData.headroom)
        let key = framingTestKey()
        TransportData.seal(&buffer, receiverIndex: 0x0102_0304, counter: 0x1122_3344_5566_7788, key: key, mtu: 1500)

        let padded = roundUp16(size)
        #expect(buffer.count == 16 + padded + 16)
        #expect(buffer.start == 0)
        let wire = buffer.array
        #expect(Array(wire[0..<16]) == [4, 0, 0, 0, 0x04, 0x03, 0x02, 0x01, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        if size > 0 { #expect(Array(wire[16..<(16 + size)]) != plaintext, "the plaintext was encrypted") }

        var window = ReplayWindow()
        let result = TransportData.open(&buffer, key: key, replay: &window)
        #expect(result == .ok(counter: 0x1122_3344_5566_7788))
        #expect(buffer.array == plaintext + [UInt8](repeating: 0, count: padded - size))
        #expect(buffer.start == 16)
        #expect(window.highestCounter == 0x1122_3344_5566_7788)
    }

    @Test("padding never takes the plaintext past the MTU", arguments: [
        (length: 1419, mtu: 1420, padded: 1420), (length: 1420, mtu: 1420, padded: 1420),
        (length: 1405, mtu: 1420, padded: 1408), (length: 1500, mtu: 1420, padded: 1500),
        (length: 0, mtu: 1420, padded: 0), (length: 33, mtu: 40, padded: 40),
    ])
    func paddingCap(length: Int, mtu: Int, padded: Int) {
        #expect(TransportData.paddedLength(length, mtu: mtu) == padded)
        let slot = TestSlot()
        var buffer = slot.buffer([UInt8](repeating: 1, count: length), headroom: 16)
        TransportData.seal(&buffer, receiverIndex: 1, counter: 2, key: framingTestKey(), mtu: mtu)
        #expect(buffer.count == 16 + padded + 16)
        #expect(TransportData.messageSize(forPacketLength: length, mtu: mtu) == 16 + padded + 16)
    }

    @Test("without padding the ciphertext is as long as the plaintext")
    func noPadding() {
        let slot = TestSlot()
        var buffer = slot.buffer([1, 2, 3], headroom: 16)
        TransportData.seal(&buffer, receiverIndex: 1, counter: 2, key: framingTestKey(), padding: false, mtu: 1420)
        #expect(buffer.count == 16 + 3 + 16)
        var window = ReplayWindow()
        #expect(TransportData.open(&buffer, key: framingTestKey(), replay: &window) == .ok(counter: 2))
        #expect(buffer.array == [1, 2, 3])
    }

    @Test("sealing needs only padding + 16 bytes of tailroom")
    func exactTailroom() {
        // 16 headroom + 17 bytes + 15 padding + 16 tag = 64: the slot has no byte to spare.
        let slab = PacketSlab(slotSize: 64, slotCount: 1)
        var buffer = slab.buffer(0, headroom: 16)
        [UInt8](repeating: 9, count: 17).withUnsafeBytes { buffer.append(contentsOf: $0) }
        #expect(buffer.tailroom == 31)
        TransportData.seal(&buffer, receiverIndex: 1, counter: 2, key: framingTestKey(), mtu: 1420)
        #expect(buffer.count == 64 && buffer.tailroom == 0 && buffer.headroom == 0)
        #expect(TransportData.tailroom == 31 && TransportData.headroom == 16)
    }

    // Produced independently with python3 and the `cryptography` package:
    //   key = bytes(range(0x80, 0xa0)); counter = 0x0000010203040506; index = 0xDEADBEEF
    //   padded = pkt + bytes(4)   # pkt: the 28-byte IPv4 ICMP echo request below
    //   nonce = b"\0" * 4 + struct.pack("<Q", counter)
    //   msg = pack("<I", 4) + pack("<I", index) + pack("<Q", counter)
    //         + ChaCha20Poly1305(key).encrypt(nonce, padded, None)
    // and the keepalive likewise with counter 0 and an empty plaintext.
    static let katPacket = Hex.decode("4500001c00010000400100000a0800010a0800020800f7fe00010001")!
    static let katMessage = Hex.decode(
        "04000000efbeadde06050403020100001f413f9134c789635903d00dd56a70744120f287acec078fa2193e643a17ad6d"
            + "49d78484648374d09481fdb6a3b67684")!
    static let katKeepalive = Hex.decode("04000000efbeadde00000000000000003ae5d3f2a376d317eaea5aef0215ba54")!

    @Test("known answer: one data message and one keepalive")
    func knownAnswer() throws {
        let slot = TestSlot()
        var buffer = slot.buffer(Self.katPacket)
        TransportData.seal(&buffer, receiverIndex: 0xDEAD_BEEF, counter: 0x0102_0304_0506, key: framingTestKey(), mtu: 1420)
        #expect(buffer.array == Self.katMessage)

        var keepalive = slot.buffer([])
        TransportData.seal(&keepalive, receiverIndex: 0xDEAD_BEEF, counter: 0, key: framingTestKey(), mtu: 1420)
        #expect(keepalive.array == Self.katKeepalive)
        #expect(keepalive.count == Spec.dataMinimumSize)

        var window = ReplayWindow()
        var received = slot.buffer(Self.katMessage)
        #expect(TransportData.open(&received, key: framingTestKey(), replay: &window) == .ok(counter: 0x0102_0304_0506))
        let trimmed = try #require(InnerPacket.length(of: UnsafeRawBufferPointer(received.bytes)))
        received.truncate(to: trimmed)
        #expect(received.array == Self.katPacket)

        var receivedKeepalive = slot.buffer(Self.katKeepalive)
        #expect(TransportData.open(&receivedKeepalive, key: framingTestKey(), replay: &window) == .drop(.replayed),
                "counter 0 is far behind the window now")
        var freshWindow = ReplayWindow()
        #expect(TransportData.open(&receivedKeepalive, key: framingTestKey(), replay: &freshWindow) == .ok(counter: 0))
        #expect(receivedKeepalive.count == 0)
    }

    @Test("trimming by the IP header restores IPv4 packets", arguments: [20, 21, 28, 60, 1279, 1420])
    func trimIPv4(length: Int) throws {
        try checkTrim(ipv4Packet(totalLength: length))
    }

    @Test("trimming by the IP header restores IPv6 packets", arguments: [0, 1, 8, 100, 1380])
    func trimIPv6(payload: Int) throws {
        try checkTrim(ipv6Packet(payloadLength: payload))
    }

    private func checkTrim(_ packet: [UInt8]) throws {
        let slot = TestSlot()
        var buffer = slot.buffer(packet)
        TransportData.seal(&buffer, receiverIndex: 7, counter: 99, key: framingTestKey(), mtu: 1420)
        var window = ReplayWindow()
        #expect(TransportData.open(&buffer, key: framingTestKey(), replay: &window) == .ok(counter: 99))
        #expect(buffer.count == TransportData.paddedLength(packet.count, mtu: 1420))
        let length = try #require(InnerPacket.length(of: UnsafeRawBufferPointer(buffer.bytes)))
        buffer.truncate(to: length)
        #expect(buffer.array == packet)
    }

    /// A sealed 48-byte message (1-byte plaintext) with counter 5000, and a window that has seen 4000...4999.
    private func fixture() -> (message: [UInt8], window: ReplayWindow) {
        let slot = TestSlot()
        var buffer = slot.buffer([0x42])
        TransportData.seal(&buffer, receiverIndex: 0xA1B2_C3D4, counter: 5000, key: framingTestKey(), mtu: 1420)
        var window = ReplayWindow()
        for c in UInt64(4000)..<5000 { _ = window.accept(c) }
        return (buffer.array, window)
    }

    @Test("a flipped bit in counter, ciphertext or tag is refused and leaves the window alone")
    func authenticationFirst() {
        let (message, window) = fixture()
        let slot = TestSlot()
        let key = framingTestKey()
        var refusedByTag = 0
        for bit in (8 * 8)..<(message.count * 8) {
            var forged = message
            forged[bit / 8] ^= 1 << (bit % 8)
            var copy = window
            var buffer = slot.buffer(forged)
            let result = TransportData.open(&buffer, key: key, replay: &copy)
            #expect(result == .drop(.authenticationFailed) || result == .drop(.replayed), "bit \(bit): \(result)")
            if result == .drop(.authenticationFailed) { refusedByTag += 1 }
            #expect(copy.highestCounter == 4999, "bit \(bit) moved the window")
            // Had the forged counter been marked (say 2^63 + 5000), 5000 would now be too old.
            var genuine = slot.buffer(message)
            #expect(TransportData.open(&genuine, key: key, replay: &copy) == .ok(counter: 5000), "bit \(bit)")
        }
        #expect(refusedByTag > 0)
        // A counter already seen (5000 = 0x1388 -> 0x1380 = 4992) is refused before decryption.
        var seenCounter = message
        seenCounter[8] = 0x80
        var copy = window
        var buffer = slot.buffer(seenCounter)
        #expect(TransportData.open(&buffer, key: key, replay: &copy) == .drop(.replayed))
    }

    @Test("the receiver index is not authenticated: the caller picks the key by it")
    func receiverIndexNotAuthenticated() {
        let (message, window) = fixture()
        var forged = message
        forged[4] ^= 0xFF
        let slot = TestSlot()
        var copy = window
        var buffer = slot.buffer(forged)
        #expect(TransportData.open(&buffer, key: framingTestKey(), replay: &copy) == .ok(counter: 5000))
    }

    @Test("open refuses a duplicate, a wrong key, a bad header and the counter limit")
    func openDrops() {
        let (message, window) = fixture()
        let slot = TestSlot()
        let key = framingTestKey()

        var copy = window
        var first = slot.buffer(message)
        #expect(TransportData.open(&first, key: key, replay: &copy) == .ok(counter: 5000))
        var again = slot.buffer(message)
        #expect(TransportData.open(&again, key: key, replay: &copy) == .drop(.replayed))

        var fresh = window
        var wrongKey = slot.buffer(message)
        let otherKey = SecretKey([UInt8](repeating: 1, count: 32))!
        #expect(TransportData.open(&wrongKey, key: otherKey, replay: &fresh) == .drop(.authenticationFailed))
        #expect(fresh.highestCounter == 4999)

        var short = slot.buffer(Array(message[0..<31]))
        #expect(TransportData.open(&short, key: key, replay: &fresh) == .drop(.truncated))
        var typeOne = message
        typeOne[0] = 1
        var shortInitiation = slot.buffer(typeOne)
        #expect(TransportData.open(&shortInitiation, key: key, replay: &fresh) == .drop(.truncated))
        var initiation = slot.buffer([1, 0, 0, 0] + [UInt8](repeating: 0, count: 144))
        #expect(TransportData.open(&initiation, key: key, replay: &fresh) == .drop(.unknownType))
        var reserved = message
        reserved[2] = 1
        var badReserved = slot.buffer(reserved)
        #expect(TransportData.open(&badReserved, key: key, replay: &fresh) == .drop(.unknownType))

        for counter in [Spec.rejectAfterMessages, Spec.rejectAfterMessages + 1, UInt64.max] {
            var limit = message
            withUnsafeBytes(of: counter.littleEndian) { limit.replaceSubrange(8..<16, with: $0) }
            var buffer = slot.buffer(limit)
            #expect(TransportData.open(&buffer, key: key, replay: &fresh) == .drop(.counterLimit))
        }
        #expect(fresh.highestCounter == 4999)
    }

    @Test("sealing without 16 bytes of headroom is a programmer error")
    func sealNeedsHeadroom() async {
        await #expect(processExitsWith: .failure) {
            let slab = PacketSlab(slotSize: 128, slotCount: 1)
            var buffer = slab.buffer(0, headroom: 15)
            buffer.append(1)
            TransportData.seal(&buffer, receiverIndex: 1, counter: 1, key: SecretKey.zero(), mtu: 1420)
        }
    }

    @Test("sealing without room for padding and tag is a programmer error")
    func sealNeedsTailroom() async {
        await #expect(processExitsWith: .failure) {
            let slab = PacketSlab(slotSize: 64, slotCount: 1)
            var tight = slab.buffer(0, headroom: 40)
            tight.append(1)  // needs 15 padding + 16 tag = 31 bytes of tailroom, has 64 - 40 - 1 = 23
            TransportData.seal(&tight, receiverIndex: 1, counter: 1, key: SecretKey.zero(), mtu: 1420)
        }
    }
}
