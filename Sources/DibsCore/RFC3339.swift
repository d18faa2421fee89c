/// Timestamps in the API are RFC 3339 in UTC with milliseconds (`2026-11-27T07:00:00.000Z`);
/// parsing also takes other offsets and no fraction.
public enum RFC3339 {
    /// Formats an instant. Written digit by digit into one buffer: every claim's answer has a
    /// timestamp, and text built from padded pieces cost the answer 1 % of its CPU.
    public static func format(_ time: Timestamp) -> String {
        let ms = time.milliseconds
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let inDay = ms - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        guard (0...9999).contains(year) else {
            return "\(year)" + String(decoding: digits(month, day, inDay).dropFirst(4), as: UTF8.self)
        }
        var text = digits(month, day, inDay)
        put(year, width: 4, at: 0, &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// `0000-MM-DDTHH:MM:SS.fffZ`: all but the year, whose four places are left for the caller.
    private static func digits(_ month: Int64, _ day: Int64, _ inDay: Int64) -> [UInt8] {
        var text = Array("0000-00-00T00:00:00.000Z".utf8)
        put(month, width: 2, at: 5, &text)
        put(day, width: 2, at: 8, &text)
        put(inDay / 3_600_000, width: 2, at: 11, &text)
        put(inDay / 60_000 % 60, width: 2, at: 14, &text)
        put(inDay / 1000 % 60, width: 2, at: 17, &text)
        put(inDay % 1000, width: 3, at: 20, &text)
        return text
    }

    /// Writes `value` (0 ..< 10^width) as `width` digits, zero-padded, at `offset`.
    private static func put(_ value: Int64, width: Int, at offset: Int, _ text: inout [UInt8]) {
        var rest = value
        for index in stride(from: offset + width - 1, through: offset, by: -1) {
            text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`; `nil` for anything else.
    public static func parse(_ text: String) -> Timestamp? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ from: Int, _ count: Int) -> Int64? {
            guard from + count <= b.count else { return nil }
            var value: Int64 = 0
            for byte in b[from..<from + count] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = number(0, 4), b[4] == UInt8(ascii: "-"), let month = number(5, 2), b[7] == UInt8(ascii: "-"),
            let day = number(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
            let hour = number(11, 2), b[13] == UInt8(ascii: ":"), let minute = number(14, 2),
            b[16] == UInt8(ascii: ":"), let second = number(17, 2),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day), hour < 24, minute < 60,
            second < 60
        else { return nil }
        var index = 19
        var millis: Int64 = 0
        if index < b.count, b[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < b.count, (0x30...0x39).contains(b[index]) {
                if index - start < 3 { millis = millis * 10 + Int64(b[index] - 0x30) }
                index += 1
            }
            guard index > start else { return nil }
            for _ in min(3, index - start)..<3 { millis *= 10 }
        }
        guard index < b.count else { return nil }
        var offset: Int64 = 0
        if b[index] == UInt8(ascii: "Z") || b[index] == UInt8(ascii: "z") {
            index += 1
        } else if b[index] == UInt8(ascii: "+") || b[index] == UInt8(ascii: "-") {
            guard let h = number(index + 1, 2), index + 3 < b.count, b[index + 3] == UInt8(ascii: ":"),
                let m = number(index + 4, 2), h < 24, m < 60
            else { return nil }
            offset = (h * 60 + m) * 60_000 * (b[index] == UInt8(ascii: "+") ? 1 : -1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Timestamp(
            milliseconds: days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset)
    }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days-from-civil and its inverse.
    private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Year, month and day of a count of days since 1970-01-01.
    package static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
