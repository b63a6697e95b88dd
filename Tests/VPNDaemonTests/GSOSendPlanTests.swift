// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
@testable import VPNDaemon

/// The GSO send planner: which split super-packets go out segmented, and how a region is cut to
/// the kernel's limits (64 datagrams, 65,507 bytes per send).
@Suite("GSOSendPlan")
struct GSOSendPlanTests {
    let peer = Endpoint(ipv4: 198, 18, 0, 2, port: 51820)
    let other = Endpoint(ipv4: 198, 18, 0, 3, port: 51820)

    /// A plan with every segment sealed in place for `peer`, the last one `lastLength` bytes.
    func sealedPlan(stride: Int, segments: Int, lastLength: Int) -> GSOSendPlan {
        var plan = GSOSendPlan(stride: stride, segments: segments, segmentedSends: true)
        for i in 0..<segments {
            plan.sealed(i, offset: i * stride, length: i == segments - 1 ? lastLength : stride, to: peer)
        }
        return plan
    }

    @Test func aPlainPacketNeedsOneSlotAndASuperPacketAsManyAsItCanSplitInto() {
        #expect(GSOSendPlan.segmentSlots(packetLength: 1400, header: VirtioNetHeader(), limit: 128) == 1)
        let tso = VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 1000)
        #expect(GSOSendPlan.segmentSlots(packetLength: 10_040, header: tso, limit: 128) == 11)
        let tiny = VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 100)
        #expect(GSOSendPlan.segmentSlots(packetLength: 65_000, header: tiny, limit: 128) == 128)
        let noSize = VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 0)
        #expect(GSOSendPlan.segmentSlots(packetLength: 65_000, header: noSize, limit: 128) == 1)
    }

    @Test func sendsStopAt65507BytesBefore64Segments() {
        // 1452-byte datagrams: 65,507 / 1,452 = 45 per send.
        let plan = sealedPlan(stride: 1452, segments: 100, lastLength: 700)
        #expect(plan.segmentedDestination == peer)
        #expect(plan.segmentsPerSend == 45)
        let sends = Array(plan.sends(lastLength: 700))
        #expect(sends.map(\.offset) == [0, 45 * 1452, 90 * 1452])
        #expect(sends.map(\.length) == [45 * 1452, 45 * 1452, 9 * 1452 + 700])
        #expect(sends.allSatisfy { $0.length <= GSOSendPlan.maximumBytes })
    }

    @Test func sendsStopAt64SegmentsForSmallDatagrams() {
        let plan = sealedPlan(stride: 560, segments: 128, lastLength: 560)
        #expect(plan.segmentsPerSend == 64)
        let sends = Array(plan.sends(lastLength: 560))
        #expect(sends.map(\.offset) == [0, 64 * 560])
        #expect(sends.map(\.length) == [64 * 560, 64 * 560])
        #expect(GSOSendPlan.maximumSends(segments: 128) >= sends.count)
    }

    @Test func oneSendWhenTheRunFits() {
        let plan = sealedPlan(stride: 1452, segments: 3, lastLength: 100)
        #expect(Array(plan.sends(lastLength: 100)).map(\.length) == [2 * 1452 + 100])
    }

    @Test func aLoneSegmentOrATransportWithoutGSOSendsSingles() {
        #expect(sealedPlan(stride: 1452, segments: 1, lastLength: 1452).segmentedDestination == nil)
        var plan = GSOSendPlan(stride: 1452, segments: 4, segmentedSends: false)
        for i in 0..<4 { plan.sealed(i, offset: i * 1452, length: 1452, to: peer) }
        #expect(plan.segmentedDestination == nil)
    }

    @Test func anythingThatBreaksTheRunSendsSingles() {
        // A segment for another peer.
        var mixed = GSOSendPlan(stride: 1452, segments: 3, segmentedSends: true)
        mixed.sealed(0, offset: 0, length: 1452, to: peer)
        mixed.sealed(1, offset: 1452, length: 1452, to: other)
        mixed.sealed(2, offset: 2904, length: 1452, to: peer)
        #expect(mixed.segmentedDestination == nil)
        // A short segment before the last.
        var short = GSOSendPlan(stride: 1452, segments: 3, segmentedSends: true)
        short.sealed(0, offset: 0, length: 1452, to: peer)
        short.sealed(1, offset: 1452, length: 1000, to: peer)
        short.sealed(2, offset: 2904, length: 1452, to: peer)
        #expect(short.segmentedDestination == nil)
        // A segment that moved (sealed with other headroom).
        var moved = GSOSendPlan(stride: 1452, segments: 2, segmentedSends: true)
        moved.sealed(0, offset: 2, length: 1452, to: peer)
        moved.sealed(1, offset: 1454, length: 1452, to: peer)
        #expect(moved.segmentedDestination == nil)
        // A staged, dropped or ICMP-answered segment.
        var staged = GSOSendPlan(stride: 1452, segments: 3, segmentedSends: true)
        staged.sealed(0, offset: 0, length: 1452, to: peer)
        staged.notSent()
        staged.sealed(2, offset: 2904, length: 1452, to: peer)
        #expect(staged.segmentedDestination == nil)
    }
}
