// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNCrypto
import VPNTesting

@Suite("TCP framing")
struct TCPDeframerTests {
    /// Random frames of 1...maxLength bytes, and the stream that carries them.
    private func makeStream(seed: UInt64, frames: Int, maxLength: Int = 2000) -> (frames: [[UInt8]], stream: [UInt8]) {
        var entropy = SeededEntropy(seed: seed)
        var all: [[UInt8]] = []
        var stream: [UInt8] = []
        for _ in 0..<frames {
            let frame = entropy.bytes(1 + entropy.next(below: maxLength))
            all.append(frame)
            stream += [UInt8(frame.count >> 8), UInt8(frame.count & 0xFF)] + frame
        }
        return (all, stream)
    }

    /// Moves every complete frame out of `deframer`; nil (and an issue) on an invalid stream.
    private func drain(_ deframer: inout TCPDeframer, into out: inout [[UInt8]]) -> Bool {
        while true {
            switch deframer.nextFrame() {
            case .frame(let bytes): out.append(Array(bytes))
            case .needMoreData: return true
            case .invalid(let reason):
                Issue.record("unexpected \(reason)")
                return false
            }
        }
    }

    /// Feeds `stream` through `deframer` in chunks of the sizes `chunkSize` returns, reading into
    /// ``TCPDeframer/writableSpace`` as a socket read would; returns the frames.
    private func deframe(_ stream: [UInt8], _ deframer: inout TCPDeframer, chunkSize: () -> Int) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var offset = 0
        while offset < stream.count {
            let space = deframer.writableSpace
            let n = min(chunkSize(), space.count, stream.count - offset)
            guard n > 0 else {
                Issue.record("no writable space after draining")
                return out
            }
            stream.withUnsafeBytes { space.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            deframer.didWrite(n)
            offset += n
            guard drain(&deframer, into: &out) else { return out }
        }
        let leftover = deframer.bufferedByteCount
        #expect(leftover == 0)
        return out
    }

    @Test("frames survive any fixed chunking", arguments: [1, 2, 3, 7, 64, 1499, 4096, 1 << 20])
    func fixedChunks(chunk: Int) {
        let (frames, stream) = makeStream(seed: UInt64(chunk), frames: 200)
        var deframer = TCPDeframer()
        #expect(deframe(stream, &deframer) { chunk } == frames)
    }

    @Test("frames survive random chunking, with a buffer of just one largest frame", arguments: [11, 12, 13] as [UInt64])
    func randomChunks(seed: UInt64) {
        let (frames, stream) = makeStream(seed: seed, frames: 300, maxLength: 3000)
        var entropy = SeededEntropy(seed: seed &* 31)
        var deframer = TCPDeframer(capacity: 3002, maximumFrameLength: 3000)
        #expect(deframe(stream, &deframer) { 1 + entropy.next(below: 5000) } == frames)
    }

    @Test("largest frames back to back through the smallest buffer")
    func largestFrames() {
        var entropy = SeededEntropy(seed: 99)
        var frames: [[UInt8]] = []
        var stream: [UInt8] = []
        for _ in 0..<4 {
            let frame = entropy.bytes(65535)
            frames.append(frame)
            stream += [0xFF, 0xFF] + frame
        }
        var deframer = TCPDeframer(capacity: 65537)
        #expect(deframe(stream, &deframer) { 40_000 } == frames)
    }

    @Test("several frames in one append, then needMoreData")
    func severalInOneChunk() {
        var deframer = TCPDeframer(capacity: 64, maximumFrameLength: 16)
        let stream: [UInt8] = [0, 1, 0xAA, 0, 2, 0xBB, 0xCC, 0, 3, 1, 2, 3, 0]
        let taken = stream.withUnsafeBytes { deframer.append($0) }
        #expect(taken == stream.count)
        var out: [[UInt8]] = []
        #expect(drain(&deframer, into: &out))
        #expect(out == [[0xAA], [0xBB, 0xCC], [1, 2, 3]])
        let buffered = deframer.bufferedByteCount
        #expect(buffered == 1)
        let rest: [UInt8] = [1, 0xDD]
        let takenRest = rest.withUnsafeBytes { deframer.append($0) }
        #expect(takenRest == 2)
        #expect(drain(&deframer, into: &out))
        #expect(out.last == [0xDD])
    }

    @Test("append takes only what fits")
    func appendPartial() {
        var deframer = TCPDeframer(capacity: 18, maximumFrameLength: 16)
        let stream: [UInt8] = [0, 16] + [UInt8](repeating: 7, count: 16) + [0, 1, 9]
        let taken = stream.withUnsafeBytes { deframer.append($0) }
        #expect(taken == 18)
        guard case .frame(let frame) = deframer.nextFrame() else {
            Issue.record("expected a frame")
            return
        }
        #expect(Array(frame) == [UInt8](repeating: 7, count: 16))
        let takenRest = stream.withUnsafeBytes { deframer.append(UnsafeRawBufferPointer(rebasing: $0[taken...])) }
        #expect(takenRest == 3)
        guard case .frame(let second) = deframer.nextFrame() else {
            Issue.record("expected a second frame")
            return
        }
        #expect(Array(second) == [9])
    }

    @Test("a zero length is invalid, and stays invalid until reset")
    func zeroLength() {
        var deframer = TCPDeframer(capacity: 64, maximumFrameLength: 32)
        let stream: [UInt8] = [0, 1, 0x11, 0, 0, 0, 1, 0x22]
        _ = stream.withUnsafeBytes { deframer.append($0) }
        guard case .frame = deframer.nextFrame() else {
            Issue.record("expected the first frame")
            return
        }
        for _ in 0..<2 {
            guard case .invalid(.badFrameLength) = deframer.nextFrame() else {
                Issue.record("expected badFrameLength")
                return
            }
        }
        let invalid = deframer.isInvalid
        #expect(invalid)
        deframer.reset()
        let invalidAfterReset = deframer.isInvalid
        let bufferedAfterReset = deframer.bufferedByteCount
        #expect(!invalidAfterReset && bufferedAfterReset == 0)
        guard case .needMoreData = deframer.nextFrame() else {
            Issue.record("expected needMoreData after reset")
            return
        }
    }

    @Test("a length over the maximum is invalid before its body arrives", arguments: [33, 1000, 65535])
    func overMaximum(length: Int) {
        var deframer = TCPDeframer(capacity: 64, maximumFrameLength: 32)
        let header: [UInt8] = [UInt8(length >> 8), UInt8(length & 0xFF)]
        _ = header.withUnsafeBytes { deframer.append($0) }
        guard case .invalid(.badFrameLength) = deframer.nextFrame() else {
            Issue.record("expected badFrameLength")
            return
        }
    }

    @Test("a length of exactly the maximum is fine")
    func atMaximum() {
        var deframer = TCPDeframer(capacity: 34, maximumFrameLength: 32)
        let stream: [UInt8] = [0, 32] + [UInt8](repeating: 3, count: 32)
        _ = stream.withUnsafeBytes { deframer.append($0) }
        guard case .frame(let frame) = deframer.nextFrame() else {
            Issue.record("expected a frame")
            return
        }
        #expect(frame.count == 32)
    }

    @Test("a sealed data message framed for TCP comes out whole")
    func framerRoundTrip() throws {
        let slot = TestSlot()
        var buffer = slot.buffer([1, 2, 3, 4, 5], headroom: TransportData.headroom)
        TransportData.seal(&buffer, receiverIndex: 3, counter: 4, key: framingTestKey(), mtu: 1420)
        let message = buffer.array
        // As the TCP transport queues it: the prefix, then the message.
        var framed = [UInt8](repeating: 0, count: TCPFramer.headerSize)
        framed.withUnsafeMutableBytes { TCPFramer.writeHeader(length: message.count, to: $0.baseAddress!) }
        framed += message
        #expect(framed == [0, 48] + message)

        var deframer = TCPDeframer()
        _ = framed.withUnsafeBytes { deframer.append($0) }
        guard case .frame(let frame) = deframer.nextFrame() else {
            Issue.record("expected a frame")
            return
        }
        #expect(Array(frame) == message)
        #expect(Wire.classify(frame) == .data(receiverIndex: 3, counter: 4))
    }

    @Test("writeHeader is big-endian")
    func writeHeader() {
        var bytes: [UInt8] = [0, 0]
        bytes.withUnsafeMutableBytes { TCPFramer.writeHeader(length: 0x1234, to: $0.baseAddress!) }
        #expect(bytes == [0x12, 0x34])
    }

    @Test("a frame length of 0 cannot be written")
    func writeHeaderZero() async {
        await #expect(processExitsWith: .failure) {
            var bytes: [UInt8] = [0, 0]
            bytes.withUnsafeMutableBytes { TCPFramer.writeHeader(length: 0, to: $0.baseAddress!) }
        }
    }
}
