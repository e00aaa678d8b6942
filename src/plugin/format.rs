//! Times as people read them in a terminal: seconds left on a URL, the age of an object.

use jiff::Timestamp;

/// Seconds from `now` until `until`; negative once it has passed.
pub fn seconds_left(until: Timestamp, now: Timestamp) -> f64 {
    until.duration_since(now).as_secs_f64()
}

/// Whole seconds left, rounded down so a URL never looks valid for longer than it is; `None` once
/// nothing is left.
pub fn whole_seconds_left(until: Timestamp, now: Timestamp) -> Option<i64> {
    let left = until.duration_since(now);
    (left.as_millis() >= 1_000).then(|| left.as_secs())
}

/// `12s` while time is left, `-` otherwise (the table cell for `URL EXPIRES IN`).
pub fn left_cell(until: Option<Timestamp>, now: Timestamp) -> String {
    match until.and_then(|t| whole_seconds_left(t, now)) {
        Some(secs) => format!("{secs}s"),
        None => "-".to_owned(),
    }
}

/// A kubectl-like age: `45s`, `7m`, `5h`, `3d`, `2y`; a time in the future (clock skew) is `0s`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(since).as_secs().max(0);
    let (mins, hours, days) = (secs / 60, secs / 3_600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if mins < 120 {
        format!("{mins}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if days < 730 {
        format!("{days}d")
    } else {
        format!("{}y", days / 365)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2026-11-26T08:00:00Z";

    #[test]
    fn seconds_left_are_fractional_and_go_negative() {
        let now = t("2026-11-26T08:00:00.250Z");
        assert_eq!(seconds_left(t("2026-11-26T08:00:15Z"), now), 14.75);
        assert_eq!(seconds_left(t("2026-11-26T07:59:59Z"), now), -1.25);
    }

    #[test]
    fn whole_seconds_round_down_and_stop_at_zero() {
        let now = t(NOW);
        assert_eq!(
            whole_seconds_left(t("2026-11-26T08:00:14.999Z"), now),
            Some(14)
        );
        assert_eq!(whole_seconds_left(t("2026-11-26T08:00:01Z"), now), Some(1));
        assert_eq!(whole_seconds_left(t("2026-11-26T08:00:00.999Z"), now), None);
        assert_eq!(whole_seconds_left(t(NOW), now), None);
        assert_eq!(whole_seconds_left(t("2026-11-26T07:00:00Z"), now), None);
    }

    #[test]
    fn the_table_cell_shows_seconds_or_a_dash() {
        let now = t(NOW);
        assert_eq!(left_cell(Some(t("2026-11-26T08:00:12Z")), now), "12s");
        assert_eq!(left_cell(Some(t("2026-11-26T07:59:00Z")), now), "-");
        assert_eq!(left_cell(None, now), "-");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = t(NOW);
        assert_eq!(age(t("2026-11-26T07:59:15Z"), now), "45s");
        assert_eq!(age(t("2026-11-26T07:58:01Z"), now), "119s");
        assert_eq!(age(t("2026-11-26T07:53:00Z"), now), "7m");
        assert_eq!(age(t("2026-11-26T03:00:00Z"), now), "5h");
        assert_eq!(age(t("2026-11-23T08:00:00Z"), now), "3d");
        assert_eq!(age(t("2024-11-26T08:00:00Z"), now), "2y");
        assert_eq!(age(t("2026-11-26T08:00:05Z"), now), "0s");
    }
}
