// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore

/// The `Transport = auto` client's choice on its own, with instants passed in.
@Suite("CarrierSelector: UDP first, TCP when UDP goes silent, back when UDP answers")
struct CarrierSelectorTests {
    let t0 = Instant.zero + .seconds(100)

    func at(_ seconds: Double) -> Instant { t0 + .milliseconds(Int64(seconds * 1000)) }

    /// Ticks at every deadline up to `end` (sessions as given); returns the actions with their times.
    func run(
        _ selector: inout CarrierSelector, until end: Instant, hasSession: Bool = true, handshakePending: Bool = false,
        answer: (UInt32, Instant) -> Instant? = { _, _ in nil }
    ) -> [(Instant, CarrierSelector.Action)] {
        var actions: [(Instant, CarrierSelector.Action)] = []
        var echoes: [(UInt32, Instant)] = []
        while true {
            let next = [selector.deadline, echoes.map(\.1).min()].compactMap { $0 }.min()
            guard let now = next, now <= end else { return actions }
            while let i = echoes.firstIndex(where: { $0.1 <= now }) {
                let (id, when) = echoes.remove(at: i)
                selector.echoReceived(id: id, over: .udp, now: when)
            }
            guard let due = selector.deadline, due <= now else { continue }
            let action = selector.tick(now: now, hasSession: hasSession, handshakePending: handshakePending)
            if action != .none { actions.append((now, action)) }
            if case .probe(let id) = action, let when = answer(id, now) { echoes.append((id, when)) }
        }
    }

    @Test func noSessionTriesTCPAfterThreeSecondsThenAlternates() {
        var selector = CarrierSelector()
        selector.initiationSent(now: at(0))
        #expect(selector.deadline == at(3))
        selector.initiationSent(now: at(1))  // a retry does not restart the wait
        let actions = run(&selector, until: at(9.5), hasSession: false, handshakePending: true)
        #expect(actions.map(\.0) == [at(3), at(6), at(9)])
        #expect(actions.map(\.1) == [.switchTo(.tcp), .switchTo(.udp), .switchTo(.tcp)])
        #expect(selector.switches == 3)
    }

    @Test func noSessionAndNoHandshakeUnderWayStaysPut() {
        var selector = CarrierSelector()
        selector.initiationSent(now: at(0))
        #expect(run(&selector, until: at(60), hasSession: false, handshakePending: false).isEmpty)
        #expect(selector.carrier == .udp)
        #expect(selector.deadline == nil)
    }

    @Test func answeredTrafficNeverProbes() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        for ms in stride(from: 0, to: 30_000, by: 10) {
            let now = at(Double(ms) / 1000)
            selector.sent(now: now)
            selector.received(over: .udp, now: now + .milliseconds(1))
            if let due = selector.deadline, due <= now {
                #expect(selector.tick(now: now, hasSession: true, handshakePending: false) == .none)
            }
        }
        #expect(selector.carrier == .udp)
        #expect(selector.switches == 0)
    }

    @Test func silentUDPProbesThenMovesToTCPAfterTwoSeconds() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        selector.sent(now: at(10))
        selector.sent(now: at(10.5))  // still unanswered since 10
        let actions = Array(run(&selector, until: at(12)).prefix(3))  // then the first UDP probe from TCP
        #expect(actions.map(\.0) == [at(11), at(11.5), at(12)])
        guard actions.count == 3 else { return }
        if case .probe = actions[0].1 {} else { Issue.record("expected a probe first, got \(actions[0].1)") }
        if case .probe = actions[1].1 {} else { Issue.record("expected a second probe, got \(actions[1].1)") }
        #expect(actions[2].1 == .switchTo(.tcp))
        #expect(selector.carrier == .tcp)
    }

    @Test func anEchoOverUDPKeepsTheSessionThere() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        selector.sent(now: at(10))  // one-way traffic: nothing comes back but the echoes
        let actions = run(&selector, until: at(20), answer: { _, sent in sent + .milliseconds(1) })
        #expect(actions.count == 1)  // one probe, answered; nothing sent since
        #expect(selector.carrier == .udp)
    }

    @Test func onTCPProbesUDPEverySecondAndReturnsAfterFiveAnsweredSeconds() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        selector.sent(now: at(0))
        _ = run(&selector, until: at(2))
        #expect(selector.carrier == .tcp)
        selector.received(over: .tcp, now: at(2.1))  // the session answers over TCP
        // UDP still blocked for 10 s: probes every second, no return.
        var actions = run(&selector, until: at(12))
        #expect(actions.count >= 10)
        #expect(actions.allSatisfy { if case .probe = $0.1 { return true } else { return false } })
        // UDP answers from 12 s on: back after five answered seconds.
        actions = run(&selector, until: at(30), answer: { _, sent in sent + .milliseconds(2) })
        let back = actions.first { $0.1 == .switchTo(.udp) }
        #expect(back.map { $0.0 >= at(17) && $0.0 <= at(19.1) } == true, "returned at \(String(describing: back?.0))")
        #expect(selector.carrier == .udp)
        #expect(selector.switches == 2)
    }

    @Test func oneUnansweredProbeRestartsTheFiveSeconds() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        selector.sent(now: at(0))
        _ = run(&selector, until: at(2))
        selector.received(over: .tcp, now: at(2.1))
        // Answers all but the probe sent near 5 s.
        let actions = run(&selector, until: at(30), answer: { _, sent in
            sent >= at(4.9) && sent <= at(5.1) ? nil : sent + .milliseconds(2)
        })
        let back = actions.first { $0.1 == .switchTo(.udp) }
        #expect(back.map { $0.0 >= at(11) } == true, "returned at \(String(describing: back?.0))")
    }

    @Test func flappingDoublesTheReturnWaitUpToTwentySeconds() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        var now = at(0)
        var waits: [Duration] = []
        for _ in 0..<5 {
            // UDP silent: to TCP.
            selector.sent(now: now)
            _ = run(&selector, until: now + .seconds(2))
            #expect(selector.carrier == .tcp)
            selector.received(over: .tcp, now: now + .seconds(2))
            waits.append(selector.returnAfter)
            // UDP answers: back to UDP.
            let actions = run(&selector, until: now + .seconds(40), answer: { _, sent in sent + .milliseconds(1) })
            guard let back = actions.first(where: { $0.1 == .switchTo(.udp) }) else {
                Issue.record("never came back")
                return
            }
            now = back.0 + .seconds(1)
        }
        #expect(waits == [.seconds(5), .seconds(10), .seconds(20), .seconds(20), .seconds(20)])
        // A minute on UDP forgets the flaps.
        now = now + .seconds(61)
        selector.sent(now: now)
        _ = run(&selector, until: now + .seconds(2))
        #expect(selector.returnAfter == .seconds(5))
    }

    @Test func tcpThatNeverAnswersSendsTheSessionBackToUDPAfterThreeSeconds() {
        var selector = CarrierSelector()
        selector.sessionEstablished(now: at(0))
        selector.sent(now: at(0))
        _ = run(&selector, until: at(2))
        #expect(selector.carrier == .tcp)
        // Nothing over TCP, UDP still silent: back to UDP 3 s after the move.
        let actions = run(&selector, until: at(5.5))
        let back = actions.first { $0.1 == .switchTo(.udp) }
        #expect(back?.0 == at(5))
        #expect(selector.lastMoveReason == .tcpUnanswered(.seconds(3)))
        #expect(selector.returnAfter == .seconds(5))
    }

    @Test func alternatingWithoutASessionLeavesTheHysteresisAlone() {
        var selector = CarrierSelector()
        selector.initiationSent(now: at(0))
        _ = run(&selector, until: at(30), hasSession: false, handshakePending: true)
        #expect(selector.switches == 10)
        #expect(selector.returnAfter == .seconds(5))
    }
}
