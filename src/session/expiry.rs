//! When a console URL stops opening connections and when an idle connection is gone.

use std::time::Duration;

use jiff::Timestamp;

/// ECS: a VncUrl opens a connection only within 15 s of issue.
pub const DEFAULT_URL_VALIDITY: Duration = Duration::from_secs(15);
/// ECS: an idle console connection is closed after 300 s.
pub const DEFAULT_SESSION_KEEPALIVE: Duration = Duration::from_secs(300);

/// The limits the operator (or the one-shot CLI) applies to every issued URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub url_validity: Duration,
    pub session_keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            url_validity: DEFAULT_URL_VALIDITY,
            session_keepalive: DEFAULT_SESSION_KEEPALIVE,
        }
    }
}

/// The two instants that follow from the moment the issuing request was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub issued_at: Timestamp,
    pub url_expires_at: Timestamp,
    pub session_expires_at: Timestamp,
}

impl Expiry {
    pub fn from_issue(issued_at: Timestamp, limits: Limits) -> Self {
        let url_expires_at = add(issued_at, limits.url_validity);
        Self {
            issued_at,
            url_expires_at,
            session_expires_at: add(url_expires_at, limits.session_keepalive),
        }
    }
}

/// Adds a duration, saturating at the largest timestamp instead of failing: limits come from flags.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The next whole second at or after `t`: status timestamps carry whole seconds, and an instant
/// the controller waits for must never read earlier than it is.
pub fn ceil_second(t: Timestamp) -> Timestamp {
    let second = jiff::SignedDuration::from_secs(1);
    let mut floor = Timestamp::from_second(t.as_second()).unwrap_or(t);
    if floor > t {
        floor = floor.checked_sub(second).unwrap_or(floor);
    }
    if floor == t {
        t
    } else {
        floor.checked_add(second).unwrap_or(t)
    }
}

/// RFC 3339 in UTC with whole seconds, the form status fields and the CLI use.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_give_15_and_315_seconds() {
        let t: Timestamp = "2026-11-26T08:00:00Z".parse().unwrap();
        let e = Expiry::from_issue(t, Limits::default());
        assert_eq!(rfc3339(e.url_expires_at), "2026-11-26T08:00:15Z");
        assert_eq!(rfc3339(e.session_expires_at), "2026-11-26T08:05:15Z");
    }

    #[test]
    fn ceil_second_rounds_up_only_fractions() {
        let t: Timestamp = "2026-11-26T08:00:00Z".parse().unwrap();
        assert_eq!(ceil_second(t), t);
        let frac: Timestamp = "2026-11-26T08:00:00.001Z".parse().unwrap();
        assert_eq!(rfc3339(ceil_second(frac)), "2026-11-26T08:00:01Z");
        let neg: Timestamp = "1969-12-31T23:59:59.5Z".parse().unwrap();
        assert_eq!(ceil_second(neg), Timestamp::UNIX_EPOCH);
        assert_eq!(ceil_second(Timestamp::MAX), Timestamp::MAX);
    }

    #[test]
    fn absurd_durations_saturate_instead_of_panicking() {
        let t: Timestamp = "2026-11-26T08:00:00Z".parse().unwrap();
        assert_eq!(add(t, Duration::from_secs(u64::MAX)), Timestamp::MAX);
    }
}
