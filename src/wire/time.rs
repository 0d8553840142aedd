//! The two encodings of the time fields `until` and `expiresAt` (W1).

use super::ids::UnixMillis;
use std::fmt::Write as _;

/// How `until` (session ERROR) and `expiresAt` (ban CREATE) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeEncoding {
    /// The seed's form and the default: integer Unix milliseconds, 0 = none.
    #[default]
    UnixMillis,
    /// Go `time.Time` JSON (RFC 3339, nanoseconds with trailing zeros
    /// trimmed, UTC `Z`); 0 is written as Go's zero time.
    Rfc3339,
}

impl TimeEncoding {
    /// Parse the `TIME_ENCODING` setting.
    pub fn parse(s: &str) -> Option<TimeEncoding> {
        match s {
            "unix_millis" => Some(TimeEncoding::UnixMillis),
            "rfc3339" => Some(TimeEncoding::Rfc3339),
            _ => None,
        }
    }
}

/// Go's zero `time.Time` in JSON.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

// Days from 1970-01-01 to the civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const MIN_MS: i64 = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// RFC 3339 text as Go's `time.Time.MarshalJSON` writes a UTC instant.
/// `0` is the "no time" value and becomes Go's zero time; instants outside
/// years 1..9999 (which Go refuses to marshal) are clamped.
pub fn rfc3339(ms: i64) -> String {
    if ms == 0 {
        return GO_ZERO_TIME.to_string();
    }
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let mut out = String::with_capacity(24);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parse RFC 3339 (`time.RFC3339` layout as Go's `UnmarshalJSON` accepts it:
/// optional fraction of 1-9 digits, `Z` or `±hh:mm`) into Unix milliseconds,
/// fraction truncated. Go's zero time gives 0 ("no expiry", W8).
pub fn parse_rfc3339(s: &str) -> Option<UnixMillis> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &b[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        for k in 0..3 {
            frac_ms = frac_ms * 10 + digits.get(k).map_or(0, |c| i64::from(c - b'0'));
        }
    }
    let offset_s = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = std::str::from_utf8(&[*h1, *h2]).ok()?.parse::<i64>().ok()?;
            let om = std::str::from_utf8(&[*m1, *m2]).ok()?.parse::<i64>().ok()?;
            if oh > 23 || om > 59 {
                return None;
            }
            let v = oh * 3600 + om * 60;
            if *sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    let ms = secs * 1000 + frac_ms;
    if ms == MIN_MS {
        return Some(UnixMillis(0));
    }
    Some(UnixMillis(ms))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), GO_ZERO_TIME);
        assert_eq!(rfc3339(1_893_456_000_000), "2030-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_787_480_100_123), "2026-08-23T10:15:00.123Z");
        assert_eq!(rfc3339(1_787_480_100_120), "2026-08-23T10:15:00.12Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_rfc3339("2030-01-01T00:00:00Z"),
            Some(UnixMillis(1_893_456_000_000))
        );
        assert_eq!(
            parse_rfc3339("2026-08-23T10:15:00.123456789Z"),
            Some(UnixMillis(1_787_480_100_123))
        );
        assert_eq!(
            parse_rfc3339("2030-01-01T02:00:00+02:00"),
            Some(UnixMillis(1_893_456_000_000))
        );
        assert_eq!(parse_rfc3339(GO_ZERO_TIME), Some(UnixMillis(0)));
        assert_eq!(parse_rfc3339("2030-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2030-01-01 00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00"), None);
    }
}
