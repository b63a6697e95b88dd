// SPDX-License-Identifier: MIT
import FuzzSupport
import VPNBasics
import VPNCore

// Fuzz target (c): TCPDeframer fed a stream in arbitrary chunks, checked against a model.
//
// Input: a control byte (bit 0: the small deframer, 200-byte buffer and 148-byte frames, which
// compacts often; else the daemon's default; bit 1: fill through writableSpace/didWrite instead
// of append), four chunk sizes (1-256 bytes, used in turn), then the stream. After each chunk the
// frames are drained until needMoreData or invalid. Every frame, and the point where the stream
// turns invalid, must be what a plain reading of the whole stream says; a deframer with free
// space 0 after being drained would hang its connection, and is a finding too.

nonisolated(unsafe) var large = TCPDeframer()
nonisolated(unsafe) var small = TCPDeframer(capacity: 200, maximumFrameLength: 148)

/// What a plain reading of the whole stream finds, in order.
enum ModelItem {
    /// A frame of `length` bytes starting at `start`.
    case frame(start: Int, length: Int)
    /// A bad length prefix at `offset`.
    case invalid(offset: Int)
}

func model(_ stream: UnsafeRawBufferPointer, maximum: Int) -> [ModelItem] {
    var items: [ModelItem] = []
    var offset = 0
    while stream.count - offset >= 2 {
        let length = Int(stream[offset]) << 8 | Int(stream[offset + 1])
        if length == 0 || length > maximum {
            items.append(.invalid(offset: offset))
            break
        }
        guard stream.count - offset - 2 >= length else { break }
        items.append(.frame(start: offset + 2, length: length))
        offset += 2 + length
    }
    return items
}

func run(_ deframer: inout TCPDeframer, stream: UnsafeRawBufferPointer, chunks: [Int], useWritableSpace: Bool) {
    deframer.reset()
    let expected = model(stream, maximum: deframer.maximumFrameLength)
    var next = 0  // index in expected
    var fed = 0
    var consumed = 0  // stream bytes returned as frames, prefixes included
    var chunk = 0
    while fed < stream.count {
        let want = min(chunks[chunk % chunks.count], stream.count - fed)
        chunk += 1
        var taken: Int
        if useWritableSpace {
            let space = deframer.writableSpace
            taken = min(space.count, want)
            if taken > 0 {
                space.baseAddress!.copyMemory(from: stream.baseAddress! + fed, byteCount: taken)
            }
            deframer.didWrite(taken)
        } else {
            taken = deframer.append(UnsafeRawBufferPointer(rebasing: stream[fed..<(fed + want)]))
        }
        fed += taken
        invariant(deframer.bufferedByteCount == fed - consumed, "buffered \(deframer.bufferedByteCount), expected \(fed - consumed)")
        drain: while true {
            switch deframer.nextFrame() {
            case .frame(let frame):
                guard next < expected.count, case .frame(let start, let length) = expected[next] else {
                    invariant(false, "a frame of \(frame.count) bytes where the stream has none")
                    return
                }
                invariant(start + length <= fed, "a frame returned before all of it was fed")
                invariant(frame.elementsEqual(stream[start..<(start + length)]), "frame \(next) differs from the stream")
                next += 1
                consumed = start + length
            case .needMoreData:
                if next < expected.count {
                    switch expected[next] {
                    case .frame(let start, let length):
                        invariant(start + length > fed, "needMoreData with frame \(next) complete")
                    case .invalid(let offset):
                        invariant(offset + 2 > fed, "needMoreData with a bad length prefix at \(offset) fed")
                    }
                }
                break drain
            case .invalid(let reason):
                invariant(reason == .badFrameLength, "invalid for \(reason)")
                guard next < expected.count, case .invalid(let offset) = expected[next] else {
                    invariant(false, "invalid where the stream is valid")
                    return
                }
                invariant(offset + 2 <= fed, "invalid before the bad prefix was fed")
                invariant(deframer.isInvalid, "invalid returned but isInvalid is false")
                return
            }
        }
        if taken == 0 {
            invariant(deframer.writableSpace.count > 0, "drained deframer has no space: the connection would hang")
        }
    }
    // Everything fed and drained without an invalid prefix: every frame came out.
    invariant(next == expected.count, "\(expected.count - next) frames left unreturned at the end")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let control = input.byte()
    var chunks: [Int] = []
    for _ in 0..<4 { chunks.append(Int(input.byte()) + 1) }
    let stream = input.rest
    if control & 1 != 0 {
        run(&small, stream: stream, chunks: chunks, useWritableSpace: control & 2 != 0)
    } else {
        run(&large, stream: stream, chunks: chunks, useWritableSpace: control & 2 != 0)
    }
    return 0
}

@_cdecl("FuzzTCPDeframer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc: argc, argv: argv, seeds: {
        func frame(_ message: [UInt8]) -> [UInt8] { [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message }
        let initiation = [1, 0, 0, 0] + [UInt8](repeating: 0x11, count: Spec.initiationSize - 4)
        let response = [2, 0, 0, 0] + [UInt8](repeating: 0x22, count: Spec.responseSize - 4)
        let data = [4, 0, 0, 0] + [UInt8](repeating: 0x44, count: 60)
        let keepalive = [4, 0, 0, 0] + [UInt8](repeating: 0, count: Spec.dataMinimumSize - 4)
        let stream = frame(initiation) + frame(response) + frame(keepalive) + frame(data)
        return [
            Seed("handshake-and-data-1", [0x00, 0, 0, 0, 0] + stream),
            Seed("handshake-and-data-small-chunks", [0x01, 2, 6, 0, 100] + stream),
            Seed("writable-space", [0x03, 63, 127, 1, 3] + stream + frame(data)),
            Seed("zero-length", [0x00, 255, 255, 255, 255] + frame(data) + [0, 0, 4]),
            Seed("too-long-small", [0x01, 9, 9, 9, 9] + frame(data) + [0, 149] + data),
            Seed("large-frame", [0x02, 255, 128, 255, 17] + frame([4, 0, 0, 0] + [UInt8](repeating: 0x55, count: 1400))),
        ]
    }, callback: fuzzOneInput)
}
