import DibsCore
import Testing

@Suite struct HoldTokenTests {
    @Test func tokensAreRandomAndRoundTrip() throws {
        let tokens = (0..<1000).map { _ in HoldToken.random() }
        #expect(Set(tokens).count == 1000)
        let token = tokens[0]
        #expect(token.description.count == 32)
        #expect(try HoldToken(token.description) == token)
        #expect(try HoldToken(token.description.uppercased()) == token)
    }

    /// Tokens come from a pool refilled 4 KiB (256 tokens) at a time, shared by every thread:
    /// tokens drawn at once across refills are still all different.
    @Test func tokensDrawnConcurrentlyAcrossRefillsDiffer() async {
        let tokens = await withTaskGroup(of: [HoldToken].self) { group in
            for _ in 0..<8 { group.addTask { (0..<500).map { _ in HoldToken.random() } } }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(tokens.count == 4000 && Set(tokens).count == 4000)
        #expect(!tokens.contains { $0.bytes.allSatisfy { $0 == 0 } })
    }

    @Test func hashMatchesOnlyItsToken() throws {
        let token = HoldToken.random()
        let hash = token.hash
        #expect(hash.matches(token))
        #expect(!hash.matches(.random()))
        #expect(hash.bytes.count == 32)
        #expect(!hash.description.contains(token.description))
        #expect(try HoldTokenHash(hex: hash.description) == hash)
    }

    @Test func knownDigest() throws {
        // SHA-256 of sixteen zero bytes.
        let zero = try HoldToken(String(repeating: "0", count: 32))
        #expect(zero.hash.description == "374708fff7719dd5979ec875d56cd2286f6d3cf7ec317a3b25632aab28ec37bb")
    }

    @Test(arguments: ["", "abc", String(repeating: "g", count: 32), String(repeating: "0", count: 34)])
    func malformedTokensAreRefused(_ text: String) {
        #expect(throws: DibsError.self) { try HoldToken(text) }
    }
}

@Suite struct HumanCodeTests {
    @Test func roundTripsAndForgivesPeople() throws {
        for _ in 0..<200 {
            let code = HumanCode.random()
            #expect(try HumanCode(code.description) == code)
            let sloppy = code.description.lowercased().replacingOccurrences0("0", "o").replacingOccurrences0("1", "l")
            #expect(try HumanCode(sloppy) == code)
            let hyphenated = String(code.description.prefix(5)) + "-" + String(code.description.dropFirst(5))
            #expect(try HumanCode(hyphenated) == code)
        }
    }

    @Test func knownCheckSymbol() throws {
        // "10" is 32; 32 mod 37 = 32, the symbol at 32 is "*".
        #expect(try HumanCode("10*").body == "10")
        // "Z" is 31 → "Z".
        #expect(try HumanCode("ZZ").check == "Z")
    }

    @Test func everySingleSymbolTypoIsCaught() throws {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for _ in 0..<50 {
            let code = HumanCode.random(length: 8)
            var symbols = Array(code.body)
            let position = Int.random(in: 0..<symbols.count)
            let original = symbols[position]
            symbols[position] = alphabet.first { $0 != original }!
            #expect(throws: DibsError.self) { try HumanCode(String(symbols) + String(code.check)) }
            // Two neighbours swapped is caught too (unless they are equal).
            var swapped = Array(code.body)
            if swapped[0] != swapped[1] {
                swapped.swapAt(0, 1)
                #expect(throws: DibsError.self) { try HumanCode(String(swapped) + String(code.check)) }
            }
        }
    }

    @Test(arguments: ["", "A", "AB!C", "UUUU", "A*B"])
    func malformedCodesAreRefused(_ text: String) {
        #expect(throws: DibsError.self) { try HumanCode(text) }
    }
}

extension String {
    fileprivate func replacingOccurrences0(_ target: Character, _ replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}
