//! Event-time parsing and formatting, in milliseconds since the Unix epoch (UTC).
//!
//! Posts carry their time in several shapes: RFC 3339 (Twitter v2, Bluesky, Mastodon), Twitter v1.1's
//! `Fri Jul 12 23:40:37 +0000 2019`, and epoch numbers (Reddit's `created_utc` seconds, milliseconds,
//! Jetstream's microseconds). A small hand-written parser keeps the core free of a date-time dependency
//! and rejects anything ambiguous instead of guessing.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

// Howard Hinnant's days-from-civil, valid for the whole proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn compose(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, frac_ms: i64, offset_min: i64) -> Option<Millis> {
    // Four-digit years only: Twitter's form carries an unbounded year, and year 4e9 overflows the millisecond
    // arithmetic below.
    if !(0..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + (h * 3600 + mi * 60 + s.min(59)) as i64 - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

/// RFC 3339 / ISO 8601 with a zone: `2020-06-24T16:28:14.000Z`, `2015-02-26 21:42:53+01:00`. A missing
/// zone is read as UTC only in the `YYYY-MM-DD HH:MM:SS` form (as NAB and many exports write it).
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let s = s.trim();
    if s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let y = num(&s[0..4])? as i64;
    let (mo, d, h, mi, sec) = (num(&s[5..7])?, num(&s[8..10])?, num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    let mut rest = &s[19..];
    let mut frac_ms = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let f = &r[..digits.min(3)];
        frac_ms = f.parse::<i64>().ok()? * 10i64.pow(3 - f.len() as u32);
        rest = &r[digits..];
    }
    let offset = match rest {
        "" => 0,
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest[1..].replace(':', "");
            // Byte slicing below: a non-ASCII character would split.
            if r.len() != 4 || !r.is_ascii() {
                return None;
            }
            sign * (num(&r[0..2])? as i64 * 60 + num(&r[2..4])? as i64)
        }
    };
    compose(y, mo, d, h, mi, sec, frac_ms, offset)
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Twitter API v1.1: `Fri Jul 12 23:40:37 +0000 2019`.
pub fn parse_twitter_v1(s: &str) -> Option<Millis> {
    let parts: Vec<&str> = s.split_ascii_whitespace().collect();
    let [_dow, mon, day, hms, zone, year] = parts.as_slice() else { return None };
    let mo = MONTHS.iter().position(|m| m == mon)? as u32 + 1;
    let hms: Vec<&str> = hms.split(':').collect();
    let [h, mi, sec] = hms.as_slice() else { return None };
    if zone.len() != 5 || !zone.is_ascii() {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (num(&zone[1..3])? as i64 * 60 + num(&zone[3..5])? as i64);
    compose(num(year)? as i64, mo, num(day)?, num(h)?, num(mi)?, num(sec)?, 0, off)
}

/// Epoch numbers: seconds (optionally fractional), milliseconds or microseconds, told apart by magnitude
/// (anything after 2001-09-09 in seconds is below 1e10; in milliseconds below 1e13).
pub fn from_epoch_number(v: f64) -> Option<Millis> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v < 1e11 {
        v * 1000.0
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1000.0
    } else {
        return None;
    };
    Some(ms.round() as Millis)
}

/// Any of the string forms above.
pub fn parse_any(s: &str) -> Option<Millis> {
    parse_rfc3339(s).or_else(|| parse_twitter_v1(s)).or_else(|| {
        let t = s.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            from_epoch_number(t.parse().ok()?)
        } else {
            None
        }
    })
}

/// RFC 3339 in UTC with milliseconds: `2015-03-03T21:07:53.000Z`.
pub fn format_rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:03}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// Hour of day (UTC) of an instant, for daily-cycle baselines.
pub fn hour_of_day(ms: Millis) -> usize {
    (ms.div_euclid(1000).rem_euclid(86_400) / 3600) as usize
}

/// Serde for an event-time field kept as `Millis` and written as RFC 3339 (`format_rfc3339`) only at the edge:
/// `#[serde(with = "crate::time::rfc3339")]`. Reading refuses a string that is not RFC 3339, so a malformed
/// event fails where it is read, not at each later use.
pub mod rfc3339 {
    use super::{format_rfc3339, parse_rfc3339, Millis};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }

    /// The same for an optional field (with `default` and `skip_serializing_if = "Option::is_none"`).
    pub mod option {
        use super::Millis;
        use serde::{Deserializer, Serializer};

        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => super::serialize(ms, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        for s in ["2020-06-24T16:28:14.000Z", "1970-01-01T00:00:00.000Z", "2016-02-29T23:59:59.999Z"] {
            assert_eq!(format_rfc3339(parse_rfc3339(s).unwrap()), s);
        }
        assert_eq!(parse_rfc3339("2020-06-24T18:28:14+02:00"), parse_rfc3339("2020-06-24T16:28:14Z"));
        assert_eq!(parse_rfc3339("2015-02-26 21:42:53"), parse_rfc3339("2015-02-26T21:42:53Z"));
        assert_eq!(parse_rfc3339("2026-07-04T14:38:08.420Z").unwrap() % 1000, 420);
    }

    #[test]
    fn twitter_and_epoch_forms() {
        assert_eq!(parse_twitter_v1("Fri Jul 12 23:40:37 +0000 2019"), parse_rfc3339("2019-07-12T23:40:37Z"));
        assert_eq!(from_epoch_number(1467590690.0), parse_rfc3339("2016-07-04T00:04:50Z"));
        assert_eq!(from_epoch_number(1783175888094841.0), Some(1783175888095));
        assert_eq!(parse_any("1467590690"), parse_rfc3339("2016-07-04T00:04:50Z"));
    }

    #[test]
    fn rejects_invalid() {
        for s in [
            "",
            "yesterday",
            "2020-02-30T00:00:00Z",
            "2020-13-01T00:00:00Z",
            "2020-01-01T25:00:00Z",
            "2020-01-01T00:00:00+5",
        ] {
            assert_eq!(parse_any(s), None, "{s}");
        }
        assert_eq!(from_epoch_number(f64::NAN), None);
        // Regressions: hostile times panicked (byte slicing inside `é`; overflow of a 10-digit year).
        assert_eq!(parse_any("2020-01-01T00:00:00+1é1"), None);
        assert_eq!(parse_any("Fri Jul 12 23:40:37 +1é1 2019"), None);
        assert_eq!(parse_any("Fri Jul 12 23:40:37 +0000 4294967295"), None);
        assert_eq!(parse_any("Fri Jul 12 23:40:37 +0000 9999"), parse_rfc3339("9999-07-12T23:40:37Z"));
    }
}
