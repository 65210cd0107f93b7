//! Time formats used on the AWS wire.
//!
//! AWS JSON 1.1 services carry timestamps as epoch seconds (a JSON number, AWS itself writes a
//! millisecond fraction such as `1487887903.045`); the Query protocol and CloudTrail records use
//! ISO-8601 in UTC. SigV4 uses the compact `YYYYMMDDTHHMMSSZ` form in `X-Amz-Date`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time as AWS APIs carry it. Serialises as epoch seconds with millisecond precision
/// (the AWS JSON 1.1 convention); deserialises from an epoch number or an ISO-8601 string, as
/// botocore's parser accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc())
    }

    /// Epoch seconds with a millisecond fraction, as AWS JSON services write them.
    pub fn epoch_seconds(&self) -> f64 {
        let millis = self.0.unix_timestamp_nanos() / 1_000_000;
        millis as f64 / 1000.0
    }

    /// Builds a timestamp from epoch seconds (fractions allowed). `None` when out of range.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        // An f64 holds about 16 significant digits, so for present-day epochs only microseconds
        // are real; scaling straight to nanoseconds would invent digits (1487887903.045 would
        // become ...045000192). Round at microseconds, the finest precision clients send.
        // `as` saturates a huge value at i128::MAX; the multiplication must not overflow then.
        let micros = (secs * 1e6).round() as i128;
        let nanos = micros.checked_mul(1000)?;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).ok().map(Timestamp)
    }

    /// ISO-8601 / RFC 3339 in UTC with millisecond precision, e.g. `2024-01-02T03:04:05.000Z`
    /// (the Query protocol's timestamp form).
    pub fn to_iso8601(&self) -> String {
        format_iso8601_millis(self.0)
    }

    /// Parses an ISO-8601 / RFC 3339 timestamp.
    pub fn parse_iso8601(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| Timestamp(t.to_offset(UtcOffset::UTC)))
    }
}

/// `t` with its sub-millisecond part dropped: the precision the stores keep, so a value written
/// and read back (or compared in SQL) is the same value.
pub fn truncate_to_millis(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
pub fn format_iso8601_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC (second precision, as CloudTrail's `eventTime`).
pub fn format_iso8601_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The SigV4 `X-Amz-Date` form, `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses the SigV4 `X-Amz-Date` form. `None` when malformed.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let year = digits(0..4)? as i32;
    let month = time::Month::try_from(digits(4..6)? as u8).ok()?;
    let day = digits(6..8)? as u8;
    let hour = digits(9..11)? as u8;
    let minute = digits(11..13)? as u8;
    let second = digits(13..15)? as u8;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let tod = time::Time::from_hms(hour, minute, second).ok()?;
    Some(time::PrimitiveDateTime::new(date, tod).assume_utc())
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.epoch_seconds())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => {
                Timestamp::from_epoch_seconds(n).ok_or_else(|| serde::de::Error::custom("timestamp out of range"))
            }
            Raw::Str(s) => {
                if let Ok(n) = s.parse::<f64>() {
                    return Timestamp::from_epoch_seconds(n)
                        .ok_or_else(|| serde::de::Error::custom("timestamp out of range"));
                }
                Timestamp::parse_iso8601(&s).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_beyond_any_date_are_refused_not_overflowed() {
        // Found by the parser fuzz test: 1.7e49 seconds saturated to i128::MAX microseconds.
        for secs in [1.7e49, -1.7e49, f64::MAX, 1e30] {
            assert_eq!(Timestamp::from_epoch_seconds(secs), None, "{secs}");
        }
        assert!(Timestamp::from_epoch_seconds(1_700_000_000.5).is_some());
    }

    #[test]
    fn amz_date_round_trip() {
        let t = parse_amz_date("20150830T123600Z").expect("valid date");
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
        assert!(parse_amz_date("20151330T123600Z").is_none());
        assert!(parse_amz_date("2015083OT123600Z").is_none());
    }

    #[test]
    fn epoch_json_and_iso_forms() {
        let t: Timestamp = serde_json::from_str("1487887903.045").expect("number");
        assert_eq!(t.to_iso8601(), "2017-02-23T22:11:43.045Z");
        assert_eq!(serde_json::to_string(&t).expect("ser"), "1487887903.045");
        let u: Timestamp = serde_json::from_str("\"2017-02-23T22:11:43.045Z\"").expect("iso");
        assert_eq!(t, u);
    }
}
