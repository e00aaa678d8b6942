//! When temporary credentials are due for renewal (a margin before their expiry, or at once after
//! the clock went back), and how long renewal pauses after failures.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The most that credentials are renewed ahead of their expiry: the official SDKs' three minutes.
pub const MAX_RENEWAL_MARGIN: SignedDuration = SignedDuration::from_mins(3);
/// A clock that went back further than this since the last fetch makes the credentials' age
/// unknown, so they are renewed. Smaller steps (NTP slewing) are ignored.
pub const CLOCK_STEP_TOLERANCE: SignedDuration = SignedDuration::from_secs(1);

/// How long renewal pauses after failures: `base`, doubled per further failure, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewBackoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RenewBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RenewBackoff {
    /// The pause after the `failures`-th failure in a row (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(Duration::MAX)
            .min(self.cap)
    }
}

/// How long before `expiration` credentials fetched at `fetched_at` are renewed: three minutes,
/// or a quarter of the lifetime seen at fetch time when that is shorter (the 8-second credentials
/// of a test are renewed 2 s ahead, not 3 minutes before they were even issued).
pub fn renewal_margin(fetched_at: Timestamp, expiration: Timestamp) -> SignedDuration {
    let lifetime = expiration.duration_since(fetched_at);
    if lifetime <= SignedDuration::ZERO {
        return SignedDuration::ZERO;
    }
    (lifetime / 4).min(MAX_RENEWAL_MARGIN)
}

/// When credentials fetched at `fetched_at` and expiring at `expiration` are due for renewal. An
/// answer already expired by this clock is due at once.
pub fn renewal_time(fetched_at: Timestamp, expiration: Timestamp) -> Timestamp {
    expiration
        .checked_sub(renewal_margin(fetched_at, expiration))
        .unwrap_or(expiration)
}

/// True when credentials fetched at `fetched_at`, due at `renew_at`, must be renewed at `now`:
/// they are due, or the clock went back so far that their age is unknown.
pub fn renewal_due(now: Timestamp, fetched_at: Timestamp, renew_at: Timestamp) -> bool {
    now >= renew_at || now.duration_since(fetched_at) < -CLOCK_STEP_TOLERANCE
}
