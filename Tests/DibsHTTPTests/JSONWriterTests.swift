import Testing

@testable import DibsHTTP

@Suite struct JSONWriterTests {
    private func written(_ value: String?) -> String {
        var json = JSONWriter()
        json.field("v", value)
        json.field("n", 7)
        return String(decoding: json.finish(), as: UTF8.self)
    }

    @Test func plainTextIsWrittenAsItIs() {
        #expect(written("shopper-17 café 🛒 ~\u{7F}") == #"{"v":"shopper-17 café 🛒 ~\#u{7F}","n":7}"#)
        #expect(written("") == #"{"v":"","n":7}"#)
        #expect(written(nil) == #"{"v":null,"n":7}"#)
    }

    @Test func quotesBackslashesAndControlCharactersAreEscaped() {
        #expect(written("a\"b\\c") == #"{"v":"a\"b\\c","n":7}"#)
        #expect(written("line\nnext\r\ttab\u{1}\u{1F}") == #"{"v":"line\nnext\r\ttab\u0001\u001f","n":7}"#)
        // An escape late in long text: the text before it is kept too.
        let long = String(repeating: "x", count: 300)
        #expect(written(long + "\"") == #"{"v":""# + long + #"\"","n":7}"#)
    }
}
