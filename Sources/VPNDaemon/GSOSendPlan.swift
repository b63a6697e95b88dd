// SPDX-License-Identifier: MIT
import VPNBasics
import VPNCore

/// How the sealed segments of one super-packet leave: as UDP GSO sends, each within the kernel's
/// limits, or as single datagrams.
///
/// The segments are laid out in a *region* at a fixed `stride` (see ``OffloadBuffers``). They go
/// out segmented only when there are at least two, every one was sealed for the same destination,
/// and every one still lies where the layout put it with the stride's length (the last may be
/// shorter): then the region is one contiguous run of equal-sized datagrams. A segment that was
/// staged, dropped or answered with an ICMP error breaks the run.
///
/// A pure value; the data plane reports each segment's outcome in order, then asks for the sends.
/// Allocates nothing.
struct GSOSendPlan {
    /// A UDP GSO send carries at most this many datagrams (`UDP_MAX_SEGMENTS`).
    static let segmentsPerSend = 64
    /// A UDP GSO send carries at most this many bytes (the largest UDP payload over IPv4).
    static let maximumBytes = 65507

    /// How many segment descriptors to lay out for a packet of `packetLength` bytes with
    /// `header`: one for a plain packet (no GSO), else the most it can split into
    /// (`packetLength / gsoSize + 1`), at most `limit`. A lone packet then touches one descriptor,
    /// not all of them.
    static func segmentSlots(packetLength: Int, header: VirtioNetHeader, limit: Int) -> Int {
        let gsoSize = Int(header.gsoSize)
        guard header.gsoKind != VirtioNetHeader.gsoNone, gsoSize > 0 else { return 1 }
        return min(limit, packetLength / gsoSize + 1)
    }

    /// The most sends that `segments` segments of one packet can need, whatever their stride.
    static func maximumSends(segments: Int) -> Int { segments / segmentsPerSend + 1 }

    /// The distance between segment starts in the region.
    let stride: Int
    /// Segments the packet was split into.
    let segments: Int
    private var destination: Endpoint?
    private var contiguous: Bool

    /// A plan for `segments` segments at `stride`; with `segmentedSends` false (the transport
    /// cannot send runs) every segment goes alone.
    init(stride: Int, segments: Int, segmentedSends: Bool) {
        self.stride = stride
        self.segments = segments
        contiguous = segmentedSends && segments > 1
    }

    /// Segment `index` was sealed for `endpoint` and is now `length` bytes at `offset` from the
    /// region's base.
    mutating func sealed(_ index: Int, offset: Int, length: Int, to endpoint: Endpoint) {
        if let destination, destination != endpoint { contiguous = false }
        destination = endpoint
        if offset != index * stride || (index < segments - 1 && length != stride) { contiguous = false }
    }

    /// A segment will not be sent with the others (staged, dropped, or turned into an ICMP error).
    mutating func notSent() { contiguous = false }

    /// The destination of the whole region when it goes out as GSO sends (``sends(lastLength:)``);
    /// nil when each sealed segment goes alone.
    var segmentedDestination: Endpoint? { contiguous ? destination : nil }

    /// Datagrams per send: at most ``segmentsPerSend`` and ``maximumBytes`` bytes.
    var segmentsPerSend: Int { max(1, min(Self.segmentsPerSend, Self.maximumBytes / stride)) }

    /// The GSO sends, as byte ranges of the region in order, given the last segment's length.
    func sends(lastLength: Int) -> Sends {
        Sends(stride: stride, segments: segments, perSend: segmentsPerSend, lastLength: lastLength)
    }

    /// The byte ranges of a region's GSO sends: every one but the last holds `perSend` segments.
    struct Sends: Sequence, IteratorProtocol {
        let stride: Int
        let segments: Int
        let perSend: Int
        let lastLength: Int
        private var first = 0

        init(stride: Int, segments: Int, perSend: Int, lastLength: Int) {
            self.stride = stride
            self.segments = segments
            self.perSend = perSend
            self.lastLength = lastLength
        }

        mutating func next() -> (offset: Int, length: Int)? {
            guard first < segments else { return nil }
            let last = Swift.min(first + perSend, segments) - 1
            let length = (last - first) * stride + (last == segments - 1 ? lastLength : stride)
            defer { first = last + 1 }
            return (first * stride, length)
        }
    }
}
