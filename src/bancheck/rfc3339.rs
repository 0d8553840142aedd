//! Minimal RFC 3339 reader for atlas-ban's `expiresAt` (Go `time.Time` JSON).
//!
//! Only what Go writes is needed: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)`.
//! A full date-time crate is not worth adding for one field.

/// Unix milliseconds of an RFC 3339 timestamp (sub-millisecond digits are
/// truncated toward the past). `None` if the text is not RFC 3339.
pub fn parse_unix_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let year = num(0..4)?;
    let month = num(5..7)?;
    let day = num(8..10)?;
    let hour = num(11..13)?;
    let minute = num(14..16)?;
    let second = num(17..19)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &text[start..i];
        if digits.is_empty() {
            return None;
        }
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        millis = first3.parse().ok()?;
    }
    let offset_seconds = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(secs * 1000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_timestamps() {
        assert_eq!(parse_unix_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_unix_millis("2030-01-01T00:00:00Z"),
            Some(1_893_456_000_000)
        );
        assert_eq!(
            parse_unix_millis("2026-08-23T10:15:00.123456789Z"),
            Some(1_787_480_100_123)
        );
        assert_eq!(
            parse_unix_millis("2026-08-23T12:15:00.5+02:00"),
            Some(1_787_480_100_500)
        );
        assert_eq!(
            parse_unix_millis("2024-02-29T00:00:00-01:30"),
            Some(1_709_170_200_000)
        );
        // Go's zero time lies before the epoch.
        assert_eq!(
            parse_unix_millis("0001-01-01T00:00:00Z"),
            Some(-62_135_596_800_000)
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "2030-01-01",
            "2030-01-01T00:00:00",
            "2030-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2030-01-01T00:00:00.Z",
            "2030-01-01T00:00:00Zjunk",
            "2030-01-01T00:00:00+0100",
            "２０30-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_unix_millis(bad), None, "{bad:?}");
        }
    }
}
