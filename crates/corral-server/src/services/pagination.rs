//! Opaque pagination tokens: a cursor (the sort key of the last item returned) wrapped so
//! clients treat it as opaque, with a kind tag so a token from one listing is refused by another.

use base64::Engine;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Wraps a cursor for listing `kind`.
pub fn encode(kind: &str, cursor: &str) -> String {
    ENGINE.encode(format!("corral1|{kind}|{cursor}"))
}

/// Unwraps a token issued by [`encode`] for `kind`; `None` when it was not.
pub fn decode(kind: &str, token: &str) -> Option<String> {
    let bytes = ENGINE.decode(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("corral1|")?;
    let (k, cursor) = rest.split_once('|')?;
    (k == kind).then(|| cursor.to_string())
}

/// A time as a cursor part: epoch milliseconds (what the store keeps), so cursors sort and
/// compare as the rows do.
pub fn time_cursor(t: time::OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos() / 1_000_000
}

/// The time of a cursor part written by [`time_cursor`]; `None` when it is not one.
pub fn time_from_cursor(part: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp_nanos(part.parse::<i128>().ok()?.checked_mul(1_000_000)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_kind_checked() {
        let t = encode("instances", "mi-0123456789abcdef0");
        assert_eq!(decode("instances", &t).as_deref(), Some("mi-0123456789abcdef0"));
        assert_eq!(decode("activations", &t), None);
        assert_eq!(decode("instances", "not a token"), None);
        assert_eq!(decode("instances", ""), None);
    }
}
