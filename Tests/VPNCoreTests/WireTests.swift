// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

@Suite("Wire classification and field helpers")
struct WireTests {
    private func classify(_ bytes: [UInt8]) -> WireClassification {
        bytes.withUnsafeBytes { Wire.classify($0) }
    }

    private func message(type: UInt8, count: Int, fill: UInt8 = 0xEE) -> [UInt8] {
        var bytes = [UInt8](repeating: fill, count: count)
        if count > 0 { bytes[0] = type }
        for i in 1..<4 where i < count { bytes[i] = 0 }
        return bytes
    }

    @Test("handshake messages: exact size accepted, every shorter length truncated, longer oversized",
          arguments: [(MessageType.initiation, 148, WireClassification.initiation),
                      (.response, 92, .response), (.cookieReply, 64, .cookieReply)])
    func fixedSizes(type: MessageType, size: Int, expected: WireClassification) {
        #expect(type.fixedSize == size)
        #expect(classify(message(type: type.rawValue, count: size)) == expected)
        for length in 0..<size {
            #expect(classify(message(type: type.rawValue, count: length)) == .invalid(.truncated), "length \(length)")
        }
        for length in [size + 1, size + 16, Spec.dataMaximumSize + 1] {
            #expect(classify(message(type: type.rawValue, count: length)) == .invalid(.oversized), "length \(length)")
        }
    }

    @Test("data messages: 32 bytes up to the maximum, fields read little-endian")
    func dataSizes() {
        for length in 0..<32 {
            #expect(classify(message(type: 4, count: length)) == .invalid(.truncated), "length \(length)")
        }
        var keepalive = message(type: 4, count: 32)
        keepalive[4...15] = [0x78, 0x56, 0x34, 0x12, 8, 7, 6, 5, 4, 3, 2, 1]
        #expect(classify(keepalive) == .data(receiverIndex: 0x1234_5678, counter: 0x0102_0304_0506_0708))
        #expect(classify(message(type: 4, count: 1452)) == .data(receiverIndex: 0xEEEE_EEEE, counter: .max - 0x1111_1111_1111_1111))
        #expect(Spec.dataMaximumSize == 16 + 65535 + 16)
        if case .data = classify(message(type: 4, count: Spec.dataMaximumSize)) {} else {
            Issue.record("the largest data message was refused")
        }
        #expect(classify(message(type: 4, count: Spec.dataMaximumSize + 1)) == .invalid(.oversized))
    }

    @Test("unknown type bytes are refused", arguments: [0, 6, 0x14, 0x80, 0xFF] as [UInt8])
    func unknownTypes(type: UInt8) {
        for length in [4, 32, 64, 92, 148] {
            #expect(classify(message(type: type, count: length)) == .invalid(.unknownType))
        }
    }

    @Test("nonzero reserved bytes are refused", arguments: 1...3)
    func reservedBytes(index: Int) {
        for type in MessageType.allCases {
            var bytes = message(type: type.rawValue, count: type.fixedSize ?? 48)
            bytes[index] = 0x01
            #expect(classify(bytes) == .invalid(.unknownType))
            #expect(bytes.withUnsafeBytes { Wire.messageType($0) } == nil)
            bytes[index] = 0
            #expect(bytes.withUnsafeBytes { Wire.messageType($0) } == type)
        }
    }

    /// An independent statement of the rules, for the random corpus.
    private func reference(_ bytes: [UInt8]) -> WireClassification {
        if bytes.count < 4 { return .invalid(.truncated) }
        if bytes[1] != 0 || bytes[2] != 0 || bytes[3] != 0 || !(1...5).contains(bytes[0]) { return .invalid(.unknownType) }
        let sizes: [UInt8: Int] = [1: 148, 2: 92, 3: 64]
        if let size = sizes[bytes[0]] {
            if bytes.count != size { return .invalid(bytes.count < size ? .truncated : .oversized) }
            return [1: WireClassification.initiation, 2: .response, 3: .cookieReply][bytes[0]]!
        }
        if bytes.count < (bytes[0] == 5 ? 48 : 32) { return .invalid(.truncated) }
        var index: UInt32 = 0
        var counter: UInt64 = 0
        for i in (4..<8).reversed() { index = index << 8 | UInt32(bytes[i]) }
        for i in (8..<16).reversed() { counter = counter << 8 | UInt64(bytes[i]) }
        return bytes[0] == 5 ? .probe(receiverIndex: index, counter: counter) : .data(receiverIndex: index, counter: counter)
    }

    @Test("path probes (type 5): at least 48 bytes, classified apart from data")
    func pathProbes() {
        #expect(classify(message(type: 5, count: 47)) == .invalid(.truncated))
        if case .probe = classify(message(type: 5, count: 48)) {} else { Issue.record("a 48-byte probe was refused") }
        #expect(classify(message(type: 5, count: Spec.dataMaximumSize + 1)) == .invalid(.oversized))
    }

    @Test("10,000 random datagrams never crash and match the reference rules")
    func randomCorpus() {
        var entropy = SeededEntropy(seed: 0x5EED_0001)
        var valid = 0
        for _ in 0..<10_000 {
            let length = entropy.next(below: 200)
            var bytes = entropy.bytes(length)
            // Make plausible prefixes common, so every branch is exercised.
            if length >= 4 && entropy.next(below: 2) == 0 {
                bytes[0] = UInt8(1 + entropy.next(below: 5))
                if entropy.next(below: 4) != 0 { bytes[1] = 0; bytes[2] = 0; bytes[3] = 0 }
            }
            let result = classify(bytes)
            #expect(result == reference(bytes))
            if case .invalid = result {} else { valid += 1 }
        }
        #expect(valid > 100)
    }

    @Test("little- and big-endian helpers read and write the expected bytes")
    func byteOrder() {
        var bytes = [UInt8](repeating: 0, count: 19)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeLE32(0x0403_0201, at: 1)
            raw.storeLE64(0x0C0B_0A09_0807_0605, at: 5)
            raw.storeBE16(0x0D0E, at: 13)
            raw.storeLE16(0x100F, at: 15)
            raw.storeBE16(0x1112, at: 17)
        }
        #expect(bytes == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x11, 0x12])
        bytes.withUnsafeBytes { raw in
            #expect(raw.loadLE32(at: 1) == 0x0403_0201)
            #expect(raw.loadLE64(at: 5) == 0x0C0B_0A09_0807_0605)
            #expect(raw.loadBE16(at: 13) == 0x0D0E)
            #expect(raw.loadLE16(at: 15) == 0x100F)
            #expect(raw.loadBE32(at: 1) == 0x0102_0304)
            #expect(raw.baseAddress!.loadLE16(at: 1) == 0x0201)
        }
        var prefix = [UInt8](repeating: 0xFF, count: 4)
        prefix.withUnsafeMutableBytes { Wire.writePrefix(.cookieReply, to: $0) }
        #expect(prefix == [3, 0, 0, 0])
    }

    @Test("a field read past the end of the buffer is a programmer error")
    func readPastEnd() async {
        await #expect(processExitsWith: .failure) {
            let bytes: [UInt8] = [1, 2, 3]
            _ = bytes.withUnsafeBytes { $0.loadLE32(at: 0) }
        }
    }

    @Test("protocol constants", arguments: [
        (Spec.rejectAfterMessages, UInt64.max - 8192),  // 2^64 - 2^13 - 1
        (Spec.rekeyAfterMessages, UInt64(1) << 60),
        (UInt64(Spec.replayWindowSize), 8128),
        (UInt64(Spec.dataMinimumSize), 32),
    ] as [(UInt64, UInt64)])
    func constants(value: UInt64, expected: UInt64) {
        #expect(value == expected)
    }

    @Test("timer constants match the whitepaper's table")
    func timers() {
        #expect(Spec.rekeyAfterTime == .seconds(120))
        #expect(Spec.rejectAfterTime == .seconds(180))
        #expect(Spec.rekeyAttemptTime == .seconds(90))
        #expect(Spec.rekeyTimeout == .seconds(5))
        #expect(Spec.keepaliveTimeout == .seconds(10))
        #expect(Spec.cookieRefreshTime == .seconds(120))
    }
}
