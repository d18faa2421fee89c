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

@Suite struct HoldTokenSealTests {
    let drop = try! DropID("sneakers")
    let key = try! IdempotencyKey("key-1")

    @Test func aMaskedTokenShowsOnlyWithItsKeyAndClaim() throws {
        let seal = HoldTokenSeal.random()
        let token = HoldToken.random()
        let masked = seal.mask(token, drop: drop, key: key)
        // 32 hex digits, as the token, and not the token.
        #expect(masked.count == 32 && masked != token.description)
        #expect(seal.unmask(masked, hash: token.hash, drop: drop, key: key) == token)
        // One pad per claim: the same claim masks the same way, another claim another way.
        #expect(seal.mask(token, drop: drop, key: key) == masked)
        #expect(seal.mask(token, drop: drop, key: try IdempotencyKey("key-2")) != masked)
        #expect(seal.mask(token, drop: try DropID("boots"), key: key) != masked)
        // Another key, another claim, another hash, or a changed digit: no token.
        #expect(HoldTokenSeal.random().unmask(masked, hash: token.hash, drop: drop, key: key) == nil)
        #expect(seal.unmask(masked, hash: token.hash, drop: drop, key: try IdempotencyKey("key-2")) == nil)
        #expect(seal.unmask(masked, hash: token.hash, drop: try DropID("boots"), key: key) == nil)
        #expect(seal.unmask(masked, hash: HoldToken.random().hash, drop: drop, key: key) == nil)
        var changed = Array(masked.utf8)
        changed[7] = changed[7] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(seal.unmask(String(decoding: changed, as: UTF8.self), hash: token.hash, drop: drop, key: key) == nil)
        #expect(seal.unmask("not hex", hash: token.hash, drop: drop, key: key) == nil)
        #expect(seal.unmask(masked + "00", hash: token.hash, drop: drop, key: key) == nil)
    }

    @Test func aSealedAnswerOpensOnlyWithItsKeyAndContext() throws {
        let hex = String(repeating: "ab", count: 32)
        let token = HoldToken.random()
        let masked = try HoldTokenSeal(hex: hex).mask(token, drop: drop, key: key)
        #expect(
            try HoldTokenSeal(hex: hex.uppercased()).unmask(masked, hash: token.hash, drop: drop, key: key) == token)
        let body = Array(#"{"hold_token":"\#(token)"}"#.utf8)
        let seal = try HoldTokenSeal(hex: hex)
        let box = seal.seal(body, context: Array("a".utf8))
        #expect(!String(decoding: box, as: UTF8.self).contains(token.description))
        #expect(seal.seal(body, context: Array("a".utf8)) != box, "each seal has its own nonce")
        #expect(try HoldTokenSeal(hex: hex).open(box, context: Array("a".utf8)) == body)
        #expect(seal.open(box, context: Array("b".utf8)) == nil)
        #expect(HoldTokenSeal.random().open(box, context: Array("a".utf8)) == nil)
        var changed = box
        changed[20] ^= 1
        #expect(seal.open(changed, context: Array("a".utf8)) == nil)
        #expect(seal.open([], context: Array("a".utf8)) == nil)
    }

    @Test(arguments: ["", "abc", String(repeating: "0", count: 62), String(repeating: "g", count: 64)])
    func malformedKeysAreRefused(_ hex: String) {
        #expect(throws: DibsError.self) { try HoldTokenSeal(hex: hex) }
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
