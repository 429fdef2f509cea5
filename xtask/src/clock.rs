//! Run dates: the compact UTC stamp that names report folders (`20261127T211639Z`) and its
//! readable form, through the `time` crate.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

const STAMP: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const READABLE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

/// Now, as `YYYYMMDDTHHMMSSZ` (UTC).
pub fn stamp() -> String {
    OffsetDateTime::now_utc()
        .format(STAMP)
        .expect("a UTC date formats")
}

/// "2026-11-27 21:16:39 UTC" from `20261127T211639Z` (an unreadable stamp is returned as is).
pub fn readable(stamp: &str) -> String {
    PrimitiveDateTime::parse(stamp, STAMP)
        .ok()
        .and_then(|t| t.format(READABLE).ok())
        .unwrap_or_else(|| stamp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_and_read_well() {
        let s = stamp();
        assert_eq!(s.len(), 16, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z') && s.as_bytes()[8] == b'T');
        assert_eq!(readable("20261127T211639Z"), "2026-11-27 21:16:39 UTC");
        assert_eq!(readable("garbage"), "garbage");
    }
}
