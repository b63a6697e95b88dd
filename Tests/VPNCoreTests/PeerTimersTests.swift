// SPDX-License-Identifier: MIT
import Testing
import VPNBasics
import VPNCore
import VPNTesting

// MARK: - Test support

/// Entropy that always yields zero bytes, so jitter is zero and a time line is exact.
private struct ZeroEntropy: EntropySource {
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        for index in buffer.indices { buffer[index] = 0 }
    }
}

/// The two settings every scenario runs with: WireGuard's, and everything 60 times faster.
enum TimerScale: CaseIterable, Sendable, CustomTestStringConvertible {
    case wireGuard
    case rekeyAfter2s

    var settings: TimerSettings {
        switch self {
        case .wireGuard: .wireGuard
        case .rekeyAfter2s: .shortened(rekeyAfterTime: .seconds(2))
        }
    }

    /// The factor applied to WireGuard's times.
    var factor: Double {
        switch self {
        case .wireGuard: 1
        case .rekeyAfter2s: 1.0 / 60
        }
    }

    var testDescription: String { self == .wireGuard ? "WireGuard" : "rekey after 2 s" }
}

private let origin = Instant(nanoseconds: 1_000_000_000)

/// The instant `seconds` (in WireGuard's time) after the origin, scaled by `factor`.
private func instant(_ seconds: Double, factor: Double = 1) -> Instant {
    origin + .nanoseconds(Int64((seconds * factor * 1e9).rounded()))
}

/// What happens to a peer, as the owner reports it to its timers (the calls wireguard-go makes).
enum PeerEvent: Sendable {
    /// A data packet went out.
    case sendData
    /// A data packet came in and authenticated.
    case receiveData
    /// A keepalive came in and authenticated.
    case receiveKeepalive
    /// We sent a handshake initiation.
    case initiate
    /// A handshake response came in: session derived, handshake complete.
    case receiveResponse
    /// Session keys were derived (e.g. as responder).
    case deriveSession
}

/// A peer's owner as PeerTunnel drives it: reports events, ticks at every deadline, carries out the
/// actions (each send is an authenticated packet), and records what fired when.
struct TimerDriver<Entropy: EntropySource> {
    var timers: PeerTimers
    var entropy: Entropy
    /// Nonempty tick results, in order.
    var fired: [(at: Instant, actions: TimerActions)] = []
    /// Instants at which a handshake initiation went out.
    var initiations: [Instant] = []

    init(timers: PeerTimers, entropy: Entropy) {
        self.timers = timers
        self.entropy = entropy
    }

    mutating func apply(_ event: PeerEvent, at now: Instant) {
        switch event {
        case .sendData:
            timers.anyAuthenticatedPacketTraversal(now: now)
            timers.anyAuthenticatedPacketSent(now: now)
            timers.dataSent(now: now, entropy: &entropy)
        case .receiveData:
            timers.anyAuthenticatedPacketTraversal(now: now)
            timers.anyAuthenticatedPacketReceived(now: now)
            timers.dataReceived(now: now)
        case .receiveKeepalive:
            timers.anyAuthenticatedPacketTraversal(now: now)
            timers.anyAuthenticatedPacketReceived(now: now)
        case .initiate:
            sendInitiation(at: now)
        case .receiveResponse:
            timers.anyAuthenticatedPacketTraversal(now: now)
            timers.anyAuthenticatedPacketReceived(now: now)
            timers.sessionDerived(now: now)
            timers.handshakeCompleted(now: now)
        case .deriveSession:
            timers.sessionDerived(now: now)
        }
    }

    mutating func sendInitiation(at now: Instant) {
        initiations.append(now)
        timers.handshakeInitiated(now: now, entropy: &entropy)
        timers.anyAuthenticatedPacketTraversal(now: now)
        timers.anyAuthenticatedPacketSent(now: now)
    }

    mutating func carryOut(_ actions: TimerActions, at now: Instant) {
        if actions.contains(.sendHandshakeInitiation) { sendInitiation(at: now) }
        if actions.contains(.sendKeepalive) {
            timers.anyAuthenticatedPacketTraversal(now: now)
            timers.anyAuthenticatedPacketSent(now: now)
        }
    }

    /// Ticks at every deadline up to `end`, checking on the way that a tick a nanosecond early
    /// does nothing and that each tick moves the deadline past itself.
    mutating func run(until end: Instant) {
        while let deadline = timers.nextDeadline, deadline <= end {
            var early = timers
            do {
                let result = early.tick(now: deadline - .nanoseconds(1))
                #expect(result == [])
            }
            #expect(early == timers)
            let actions = timers.tick(now: deadline)
            guard timers.nextDeadline.map({ $0 > deadline }) ?? true else {
                Issue.record("tick(now: \(deadline)) left the deadline at or before itself")
                return
            }
            if !actions.isEmpty { fired.append((deadline, actions)) }
            carryOut(actions, at: deadline)
        }
    }

    /// Applies `events` in time order, ticking at every deadline in between, up to `end`.
    mutating func run(_ events: [(at: Instant, event: PeerEvent)], until end: Instant) {
        for (at, event) in events {
            run(until: at - .nanoseconds(1))
            apply(event, at: at)
        }
        run(until: end)
    }
}

// MARK: - Scenario table

/// One time line: events at WireGuard-scale seconds, and the actions expected at each tick.
struct TimerScenario: Sendable, CustomTestStringConvertible {
    var name: String
    var persistentKeepalive: Double = 0
    var events: [(at: Double, event: PeerEvent)]
    var until: Double
    var expected: [(at: Double, actions: TimerActions)]

    var testDescription: String { name }
}

/// Retries every 5 s from `start` for 18 initiations in all, then the give-up 5 s after the last.
private func retries(from start: Double) -> [(at: Double, actions: TimerActions)] {
    (0..<18).map { (start + 5 * Double($0), TimerActions.sendHandshakeInitiation) }
        + [(start + 90, .handshakeGaveUp)]
}

let timerScenarios: [TimerScenario] = [
    TimerScenario(
        name: "passive keepalive 10 s after data received",
        events: [(0, .receiveData)], until: 60, expected: [(10, .sendKeepalive)]),
    TimerScenario(
        name: "no passive keepalive when data was sent",
        events: [(0, .receiveData), (4, .sendData), (6, .receiveKeepalive)], until: 60, expected: []),
    TimerScenario(
        name: "passive keepalive counts from the first unanswered packet",
        events: [(0, .receiveData), (7, .receiveData)], until: 60, expected: [(10, .sendKeepalive)]),
    TimerScenario(
        name: "new handshake 15 s after unanswered data, retried, given up",
        events: [(0, .sendData)], until: 200,
        expected: [(15, [TimerActions.sendHandshakeInitiation, .dataUnanswered])] + Array(retries(from: 15).dropFirst())),
    TimerScenario(
        name: "any received packet cancels the new handshake",
        events: [(0, .sendData), (14.9, .receiveKeepalive)], until: 60, expected: []),
    TimerScenario(
        name: "new handshake counts from the first unanswered data",
        events: [(0, .sendData), (10, .sendData), (16, .receiveResponse)], until: 60,
        expected: [(15, [.sendHandshakeInitiation, .dataUnanswered])]),
    TimerScenario(
        name: "retry every 5 s, give up after 18 initiations, zero keys 540 s later",
        events: [(0, .initiate)], until: 700,
        expected: Array(retries(from: 0).dropFirst()) + [(630, .zeroKeys)]),
    TimerScenario(
        name: "a response stops the retries",
        events: [(0, .initiate), (7, .receiveResponse)], until: 600,
        expected: [(5, .sendHandshakeInitiation), (547, .zeroKeys)]),
    TimerScenario(
        name: "keys zeroed 540 s after the last session",
        events: [(0, .deriveSession)], until: 600, expected: [(540, .zeroKeys)]),
    TimerScenario(
        name: "a new session postpones zeroing",
        events: [(0, .deriveSession), (300, .deriveSession)], until: 900, expected: [(840, .zeroKeys)]),
    TimerScenario(
        name: "persistent keepalive every 25 s",
        persistentKeepalive: 25, events: [(0, .receiveKeepalive)], until: 110,
        expected: [(25, .sendKeepalive), (50, .sendKeepalive), (75, .sendKeepalive), (100, .sendKeepalive)]),
    TimerScenario(
        name: "traffic postpones the persistent keepalive",
        persistentKeepalive: 25, events: [(0, .receiveKeepalive), (20, .receiveKeepalive)], until: 50,
        expected: [(45, .sendKeepalive)]),
    TimerScenario(
        name: "passive and persistent keepalive due together send one keepalive",
        persistentKeepalive: 10, events: [(0, .receiveData)], until: 35,
        expected: [(10, .sendKeepalive), (20, .sendKeepalive), (30, .sendKeepalive)]),
    TimerScenario(
        name: "no persistent keepalive when off",
        events: [(0, .receiveKeepalive), (1, .sendData), (2, .receiveKeepalive)], until: 600, expected: []),
]

/// WireGuard timer semantics (whitepaper §6), driven by fake time lines.
@Suite struct PeerTimersTests {
    @Test(arguments: timerScenarios, TimerScale.allCases)
    func timeline(_ scenario: TimerScenario, scale: TimerScale) {
        let factor = scale.factor
        let keepalive = Duration.nanoseconds(Int64((scenario.persistentKeepalive * factor * 1e9).rounded()))
        var driver = TimerDriver(
            timers: PeerTimers(settings: scale.settings, persistentKeepalive: keepalive), entropy: ZeroEntropy())
        driver.run(
            scenario.events.map { (instant($0.at, factor: factor), $0.event) },
            until: instant(scenario.until, factor: factor))

        // Scaled times are rounded to the nanosecond, so allow a microsecond of drift.
        let tolerance = Duration.microseconds(1)
        #expect(driver.fired.count == scenario.expected.count, "fired \(driver.fired.map { ($0.at, $0.actions) })")
        for (got, want) in zip(driver.fired, scenario.expected) {
            let wantAt = instant(want.at, factor: factor)
            #expect(got.actions == want.actions, "at \(want.at) s")
            #expect(
                got.at - wantAt <= tolerance && wantAt - got.at <= tolerance,
                "\(want.actions) at \(got.at), expected \(wantAt)")
        }
    }

    // MARK: - Handshake retries with jitter

    @Test(arguments: TimerScale.allCases, [1, 2, 3, 42] as [UInt64])
    func retriesWithJitterThenGiveUp(scale: TimerScale, seed: UInt64) {
        let settings = scale.settings
        var driver = TimerDriver(timers: PeerTimers(settings: settings), entropy: SeededEntropy(seed: seed))
        driver.apply(.initiate, at: origin)
        driver.run(until: origin + settings.rekeyAttemptTime * 2)

        // Exactly MAX_TIMER_HANDSHAKES (18) initiations, each REKEY_TIMEOUT + 0...333 ms after the last.
        #expect(settings.maxHandshakeAttempts == 18)
        #expect(driver.initiations.count == 18)
        let gaps = zip(driver.initiations.dropFirst(), driver.initiations).map { $0 - $1 }
        for gap in gaps {
            #expect(gap >= settings.rekeyTimeout && gap <= settings.rekeyTimeout + settings.rekeyTimeoutJitter)
        }
        #expect(Set(gaps).count > 1, "jitter never varied")

        // Then one give-up, no earlier than REKEY_ATTEMPT_TIME after the first initiation.
        let gaveUp = driver.fired.filter { $0.actions.contains(.handshakeGaveUp) }
        try? #require(gaveUp.count == 1)
        let elapsed = gaveUp[0].at - origin
        #expect(elapsed >= settings.rekeyAttemptTime)
        #expect(elapsed <= (settings.rekeyTimeout + settings.rekeyTimeoutJitter) * 18)
        #expect(driver.fired.last.map { $0.actions } == .handshakeGaveUp)
        #expect(driver.timers.handshakeAttempts == 0)
        #expect(driver.timers.nextDeadline == gaveUp[0].at + settings.zeroKeysAfter)
    }

    @Test func newRoundAfterGivingUpCountsAfresh() {
        var driver = TimerDriver(timers: PeerTimers(), entropy: ZeroEntropy())
        driver.apply(.initiate, at: origin)
        driver.run(until: instant(95))
        #expect(driver.initiations.count == 18)
        // New data is staged: the owner starts a new round, which again gets 18 initiations.
        #expect(driver.timers.initiationAllowed(now: instant(100)))
        driver.apply(.initiate, at: instant(100))
        #expect(driver.timers.handshakeAttempts == 1)
        driver.run(until: instant(300))
        #expect(driver.initiations.count == 36)
        #expect(driver.fired.filter { $0.actions.contains(.handshakeGaveUp) }.map(\.at) == [instant(90), instant(190)])
    }

    @Test func newHandshakeJitterStaysWithinBounds() {
        var entropy = SeededEntropy(seed: 7)
        var seen: Set<Duration> = []
        for _ in 0..<50 {
            var timers = PeerTimers()
            timers.dataSent(now: origin, entropy: &entropy)
            let delay = timers.nextDeadline! - origin
            #expect(delay >= .seconds(15) && delay <= .seconds(15) + .milliseconds(333))
            seen.insert(delay)
        }
        #expect(seen.count > 1)
    }

    // MARK: - Late and early ticks

    @Test func lateTickFiresEachTimerOnce() {
        var timers = PeerTimers(persistentKeepalive: .seconds(25))
        var entropy = ZeroEntropy()
        timers.anyAuthenticatedPacketTraversal(now: origin)
        timers.handshakeInitiated(now: origin, entropy: &entropy)
        timers.dataReceived(now: origin)
        let late = instant(1000)
        do {
            let result = timers.tick(now: late)
            #expect(result == [.sendHandshakeInitiation, .sendKeepalive])
        }
        #expect(timers.nextDeadline == late + .seconds(25))
        do {
            let result = timers.tick(now: late)
            #expect(result == [])
        }
    }

    @Test func tickBeforeAnyDeadlineDoesNothing() {
        var timers = PeerTimers()
        #expect(timers.nextDeadline == nil)
        do {
            let result = timers.tick(now: instant(10_000))
            #expect(result == [])
        }
        timers.dataReceived(now: origin)
        do {
            let result = timers.tick(now: instant(9.999_999_999))
            #expect(result == [])
        }
        do {
            let result = timers.tick(now: instant(10))
            #expect(result == .sendKeepalive)
        }
    }

    @Test func stopDisarmsEverything() {
        var timers = PeerTimers(persistentKeepalive: .seconds(25))
        var entropy = ZeroEntropy()
        timers.handshakeInitiated(now: origin, entropy: &entropy)
        timers.dataSent(now: origin, entropy: &entropy)
        timers.dataReceived(now: origin)
        timers.sessionDerived(now: origin)
        timers.anyAuthenticatedPacketTraversal(now: origin)
        timers.stop()
        #expect(timers.nextDeadline == nil)
        #expect(timers.handshakeAttempts == 0)
        #expect(timers.persistentKeepalive == .seconds(25))
        #expect(timers.initiationAllowed(now: origin))
    }

    @Test func persistentKeepaliveCanBeChanged() {
        var timers = PeerTimers()
        timers.anyAuthenticatedPacketTraversal(now: origin)
        #expect(timers.nextDeadline == nil)
        timers.setPersistentKeepalive(.seconds(5), now: origin)
        #expect(timers.nextDeadline == instant(5))
        timers.setPersistentKeepalive(.zero, now: instant(1))
        #expect(timers.nextDeadline == nil)
    }

    // MARK: - Key age and rekeying

    @Test(arguments: TimerScale.allCases)
    func rekeyOnSendOnlyForTheInitiator(scale: TimerScale) {
        let settings = scale.settings
        let timers = PeerTimers(settings: settings)
        let created = origin
        let rekeyAge = created + settings.rekeyAfterTime
        let justAfter = rekeyAge + .nanoseconds(1)
        #expect(!timers.shouldRekeyOnSend(keyCreated: created, isInitiator: true, sendCounter: 5, now: rekeyAge))
        #expect(timers.shouldRekeyOnSend(keyCreated: created, isInitiator: true, sendCounter: 5, now: justAfter))
        // The responder never rekeys on age, however old the key.
        let nearlyRejected = created + settings.rejectAfterTime - .nanoseconds(1)
        #expect(!timers.shouldRekeyOnSend(keyCreated: created, isInitiator: false, sendCounter: 5, now: nearlyRejected))
        // Either side rekeys past REKEY_AFTER_MESSAGES.
        let limit = settings.rekeyAfterMessages
        #expect(!timers.shouldRekeyOnSend(keyCreated: created, isInitiator: false, sendCounter: limit, now: created))
        #expect(timers.shouldRekeyOnSend(keyCreated: created, isInitiator: false, sendCounter: limit + 1, now: created))
    }

    @Test func rekeyOnSendIsRateLimited() {
        var timers = PeerTimers()
        var entropy = ZeroEntropy()
        let old = origin
        let now = instant(130)
        #expect(timers.shouldRekeyOnSend(keyCreated: old, isInitiator: true, sendCounter: 1, now: now))
        timers.handshakeInitiated(now: now, entropy: &entropy)
        #expect(!timers.shouldRekeyOnSend(keyCreated: old, isInitiator: true, sendCounter: 1, now: instant(134.9)))
        #expect(timers.shouldRekeyOnSend(keyCreated: old, isInitiator: true, sendCounter: 1, now: instant(135)))
    }

    @Test(arguments: TimerScale.allCases)
    func rekeyOnReceiveOncePerSession(scale: TimerScale) {
        let settings = scale.settings
        var timers = PeerTimers(settings: settings)
        let created = origin
        #expect(
            settings.rekeyOnReceiveAge == settings.rejectAfterTime - settings.keepaliveTimeout - settings.rekeyTimeout)
        let threshold = created + settings.rekeyOnReceiveAge
        do {
            let result = timers.shouldRekeyOnReceive(keyCreated: created, isInitiator: true, now: threshold)
            #expect(!result)
        }
        do {
            let result = timers.shouldRekeyOnReceive(
                keyCreated: created, isInitiator: false, now: threshold + .seconds(1))
            #expect(!result)
        }
        do {
            let result = timers.shouldRekeyOnReceive(
                keyCreated: created, isInitiator: true, now: threshold + .nanoseconds(1))
            #expect(result)
        }
        do {
            let result = timers.shouldRekeyOnReceive(
                keyCreated: created, isInitiator: true, now: threshold + .seconds(1))
            #expect(!result)
        }
        timers.handshakeCompleted(now: threshold + .seconds(1))
        do {
            let result = timers.shouldRekeyOnReceive(
                keyCreated: created, isInitiator: true, now: threshold + .seconds(2))
            #expect(result)
        }
    }

    @Test func wireGuardRekeysOnReceiveAt165s() {
        #expect(TimerSettings.wireGuard.rekeyOnReceiveAge == .seconds(165))
        #expect(TimerSettings.wireGuard.zeroKeysAfter == .seconds(540))
        #expect(TimerSettings.wireGuard.newHandshakeTimeout == .seconds(15))
    }

    @Test(arguments: TimerScale.allCases)
    func keysAreRejectedAfterRejectAfterTime(scale: TimerScale) {
        let settings = scale.settings
        let timers = PeerTimers(settings: settings)
        let expiry = origin + settings.rejectAfterTime
        #expect(timers.keyUsableForSending(keyCreated: origin, sendCounter: 0, now: expiry - .nanoseconds(1)))
        #expect(!timers.keyUsableForSending(keyCreated: origin, sendCounter: 0, now: expiry))
        #expect(timers.keyUsableForReceiving(keyCreated: origin, now: expiry))
        #expect(!timers.keyUsableForReceiving(keyCreated: origin, now: expiry + .nanoseconds(1)))
        let limit = settings.rejectAfterMessages
        #expect(timers.keyUsableForSending(keyCreated: origin, sendCounter: limit - 1, now: origin))
        #expect(!timers.keyUsableForSending(keyCreated: origin, sendCounter: limit, now: origin))
    }

    // MARK: - Settings and messages

    @Test func shortenedSettingsKeepProportions() {
        let short = TimerSettings.shortened(rekeyAfterTime: .seconds(2))
        #expect(short.rekeyAfterTime == .seconds(2))
        #expect(short.rejectAfterTime == .seconds(3))
        #expect(short.rekeyAttemptTime == .milliseconds(1500))
        #expect(short.rekeyTimeout == .nanoseconds(83_333_333))
        #expect(short.keepaliveTimeout == .nanoseconds(166_666_667))
        #expect(short.rekeyTimeoutJitter == .nanoseconds(5_550_000))
        #expect(short.zeroKeysAfter == .seconds(9))
        #expect(short.maxHandshakeAttempts == 18)
        #expect(short.rekeyAfterMessages == TimerSettings.wireGuard.rekeyAfterMessages)
        #expect(TimerSettings.shortened(rekeyAfterTime: .seconds(120)) == .wireGuard)
    }

    @Test func actionsDescribeThemselves() {
        #expect(TimerActions([.sendKeepalive, .zeroKeys]).description == "[sendKeepalive, zeroKeys]")
        #expect(TimerActions().description == "[]")
    }

    // MARK: - Property: nextDeadline is exact over random event sequences

    @Test(arguments: Array(UInt64(1)...40))
    func nextDeadlineIsAlwaysTheEarliestDueAction(seed: UInt64) {
        var choices = SeededEntropy(seed: seed)
        let keepalive: Duration = seed % 3 == 0 ? .seconds(25) : .zero
        var driver = TimerDriver(
            timers: PeerTimers(persistentKeepalive: keepalive), entropy: SeededEntropy(seed: ~seed))
        var now = origin
        var ticks = 0

        for _ in 0..<400 {
            // Time passes: up to 40 s, in milliseconds.
            let later = now + .milliseconds(Int64(choices.next(below: 40_000)))
            if choices.next(below: 10) == 0 {
                // A stalled loop ticks late, once: each due timer fires once and every deadline moves past now.
                var copy = driver.timers
                let actions = copy.tick(now: later)
                #expect(copy.nextDeadline.map { $0 > later } ?? true)
                do {
                    let result = copy.tick(now: later)
                    #expect(result == [])
                }
                driver.timers = copy
                driver.carryOut(actions, at: later)
            } else {
                // The loop wakes at each deadline in between.
                while let deadline = driver.timers.nextDeadline, deadline <= later {
                    var early = driver.timers
                    do {
                        let result = early.tick(now: deadline - .nanoseconds(1))
                        #expect(result == [])
                    }
                    #expect(early == driver.timers)
                    let before = driver.timers
                    let actions = driver.timers.tick(now: deadline)
                    ticks += 1
                    guard driver.timers.nextDeadline.map({ $0 > deadline }) ?? true else {
                        Issue.record("tick(now: \(deadline)) left the deadline at or before itself")
                        return
                    }
                    if actions.isEmpty {
                        // Only a new-handshake timer inside the initiation rate limit fires silently.
                        #expect(before.newHandshakeAt == deadline && !before.initiationAllowed(now: deadline))
                    }
                    driver.carryOut(actions, at: deadline)
                }
            }
            now = later

            // Something happens to the peer.
            switch choices.next(below: 12) {
            case 0: driver.apply(.sendData, at: now)
            case 1: driver.apply(.receiveData, at: now)
            case 2: driver.apply(.receiveKeepalive, at: now)
            case 3: if driver.timers.initiationAllowed(now: now) { driver.apply(.initiate, at: now) }
            case 4: driver.apply(.receiveResponse, at: now)
            case 5: driver.apply(.deriveSession, at: now)
            case 6: driver.timers.anyAuthenticatedPacketSent(now: now)
            case 7: driver.timers.anyAuthenticatedPacketReceived(now: now)
            case 8: driver.timers.dataReceived(now: now)
            case 9: _ = driver.timers.shouldRekeyOnReceive(keyCreated: origin, isInitiator: true, now: now)
            case 10: if choices.next(below: 8) == 0 { driver.timers.stop() }
            default: break
            }

            // nextDeadline is the earliest armed timer.
            let armed = [
                driver.timers.retransmitHandshakeAt, driver.timers.passiveKeepaliveAt, driver.timers.newHandshakeAt,
                driver.timers.zeroKeysAt, driver.timers.persistentKeepaliveAt,
            ].compactMap { $0 }
            #expect(driver.timers.nextDeadline == armed.min())
            #expect(driver.timers.handshakeAttempts <= driver.timers.settings.maxHandshakeAttempts)
        }
        #expect(ticks > 10, "the sequence exercised too few deadlines")
    }
}
