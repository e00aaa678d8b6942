//! How often and how soon a failed attempt is tried again by itself.

use std::time::Duration;

/// Failed attempts in a row after which automatic retries stop; a refresh starts over.
pub const MAX_AUTOMATIC_RETRIES: u32 = 8;
const BACKOFF_BASE: Duration = Duration::from_secs(2);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// Capped exponential backoff with equal jitter: half the step is fixed, half is random, so
/// retries spread out but never come sooner than half the nominal delay.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    let step = BACKOFF_BASE.saturating_mul(1 << exp).min(BACKOFF_CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    step.mul_f64(0.5 + 0.5 * jitter)
}
