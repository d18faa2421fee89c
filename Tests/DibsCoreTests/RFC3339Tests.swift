import DibsCore
import Testing

@Suite struct RFC3339Tests {
    @Test func instantsAreWrittenInUTCWithMilliseconds() {
        #expect(RFC3339.format(Timestamp(milliseconds: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Timestamp(milliseconds: 1_795_000_000_123)) == "2026-11-18T11:06:40.123Z")
        #expect(RFC3339.format(Timestamp(milliseconds: 951_782_400_007)) == "2000-02-29T00:00:00.007Z")
        #expect(RFC3339.format(Timestamp(milliseconds: 253_402_300_799_999)) == "9999-12-31T23:59:59.999Z")
        #expect(RFC3339.format(Timestamp(milliseconds: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(RFC3339.format(Timestamp(milliseconds: -62_135_596_800_000)) == "0001-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Timestamp(milliseconds: 253_402_300_800_000)) == "10000-01-01T00:00:00.000Z")
    }

    @Test func whatIsWrittenIsReadBack() {
        var milliseconds: Int64 = -62_135_596_800_000
        while milliseconds < 253_402_300_800_000 {
            let text = RFC3339.format(Timestamp(milliseconds: milliseconds))
            #expect(RFC3339.parse(text) == Timestamp(milliseconds: milliseconds), "\(text)")
            milliseconds += 7_777_777_777_777
        }
    }
}
