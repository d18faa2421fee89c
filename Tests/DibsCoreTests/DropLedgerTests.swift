import DibsCore
import Testing

/// The memory store's own paths that the conformance suite does not reach.
@Suite struct DropLedgerTests {
    @Test func longWaitlistsArePromotedInArrivalOrderSkippingLapsedClaims() async throws {
        // Enough waitlisted claims that the line's storage is compacted on the way.
        let clock = ManualClock()
        let store = MemoryLeaseStore(clock: clock)
        let drop = try DropID("long-line")
        try await store.createDrop(
            DropConfig(id: drop, units: 1, holdTTL: .seconds(1), waitlistCapacity: 10_000, opensAt: clock.now()))
        var waiting: [(claim: ClaimID, token: HoldToken)] = []
        for index in 0..<10_001 {
            let outcome = try await store.claim(
                ClaimRequest(drop: drop, user: UserID("u\(index)"), idempotencyKey: IdempotencyKey("k\(index)")))
            if index > 0 {
                #expect(outcome.decision == .waitlisted(position: index))
                waiting.append((try #require(outcome.claim), try #require(outcome.holdToken)))
            }
        }
        // Every second waitlisted shopper gives up: promotion must skip them.
        for (index, entry) in waiting.enumerated() where index % 2 == 1 {
            let status = try await store.release(claim: entry.claim, holdToken: entry.token)
            #expect(status.state == .lapsed)
        }
        var promoted: [ClaimID] = []
        while true {
            clock.advance(by: .milliseconds(1001))
            let report = try await store.reapExpired(drop: drop)
            guard report.promoted == 1 else { break }
            promoted.append(try #require(try await store.inspect(drop: drop).leases.first?.claim))
        }
        let expected = waiting.enumerated().filter { $0.offset % 2 == 0 }.map(\.element.claim)
        #expect(promoted.count == expected.count)
        #expect(promoted == expected, "promotion did not follow arrival order")
        #expect(try await store.inspect(drop: drop).waitlisted == 0)
    }
}
