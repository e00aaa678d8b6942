//! How often and how long one call (ECS or STS) is retried: capped exponential backoff with equal
//! jitter, bounded both by attempts and by an overall deadline.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::error::EcsError;
use super::http::millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (0 is treated as 1).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles with each further retry.
    pub base_delay: Duration,
    /// Backoff ceiling never exceeds this.
    pub max_delay: Duration,
    /// Overall budget for the call, attempts and waits together.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            deadline: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: one attempt within `deadline`.
    pub fn none(deadline: Duration) -> Self {
        Self {
            max_attempts: 1,
            deadline,
            ..Self::default()
        }
    }

    pub(crate) fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The ceiling before retry number `retry` (0 for the wait after the first failed attempt).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max_delay)
    }

    /// Equal jitter: half the ceiling for sure, the other half random, so retries from many
    /// sessions spread out but never come back immediately.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, fastrand::f64())
    }

    /// [`RetryPolicy::backoff`] with the random part given, `unit` in `[0, 1]`.
    pub fn backoff_with(&self, retry: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + (ceiling - half).mul_f64(unit)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or attempts or the deadline run out. Each
/// attempt gets at most `request_timeout` (less when the deadline is near). `observe` sees every
/// attempt's code (`Success` or the error's) and number, for metrics.
pub(crate) async fn run_with_retries<T, Fut>(
    policy: RetryPolicy,
    request_timeout: Duration,
    endpoint: &str,
    action: &'static str,
    mut attempt: impl FnMut() -> Fut,
    mut observe: impl FnMut(&str, u32),
) -> Result<T, EcsError>
where
    Fut: Future<Output = Result<T, EcsError>>,
{
    let started = Instant::now();
    let mut number = 0;
    loop {
        number += 1;
        let remaining = policy.deadline.saturating_sub(started.elapsed());
        let limit = request_timeout.min(remaining);
        tracing::debug!(action, attempt = number, "calling");
        let err = match tokio::time::timeout(limit, attempt()).await {
            Ok(Ok(value)) => {
                observe("Success", number);
                return Ok(value);
            }
            Ok(Err(err)) => err,
            Err(_) => EcsError::Timeout {
                endpoint: endpoint.to_owned(),
                after_ms: millis(limit),
            },
        };
        observe(err.code(), number);
        if !err.is_retryable() || number >= policy.attempts() {
            return Err(err);
        }
        let delay = policy.backoff(number - 1);
        if started.elapsed().saturating_add(delay) >= policy.deadline {
            tracing::warn!(
                action,
                attempt = number,
                code = err.code(),
                "call failed; no time left for a retry"
            );
            return Err(err);
        }
        tracing::warn!(
            action,
            attempt = number,
            code = err.code(),
            http_status = err.http_status(),
            delay_ms = millis(delay),
            "call failed; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ceilings_double_then_cap() {
        let p = RetryPolicy::default();
        let ceilings: Vec<_> = (0..6).map(|n| p.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(5));
    }

    #[test]
    fn default_schedule_fits_inside_the_deadline() {
        let p = RetryPolicy::default();
        let worst: Duration = (0..p.attempts() - 1).map(|n| p.ceiling(n)).sum();
        assert!(worst < p.deadline, "{worst:?}");
    }

    #[test]
    fn zero_attempts_means_one() {
        let p = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.attempts(), 1);
        assert_eq!(RetryPolicy::none(Duration::from_secs(1)).attempts(), 1);
    }

    #[test]
    fn odd_random_values_do_not_panic() {
        let p = RetryPolicy::default();
        for unit in [f64::NAN, f64::INFINITY, -1.0, 2.0] {
            let d = p.backoff_with(1, unit);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
        }
    }

    proptest! {
        #[test]
        fn backoff_stays_between_half_and_full_ceiling(
            retry in 0u32..100,
            base_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            unit in 0.0f64..=1.0,
        ) {
            let p = RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(base_ms),
                max_delay: Duration::from_millis(max_ms),
                deadline: Duration::from_secs(20),
            };
            let ceiling = p.ceiling(retry);
            prop_assert!(ceiling <= p.max_delay);
            let d = p.backoff_with(retry, unit);
            prop_assert!(d >= ceiling / 2 && d <= ceiling);
            let r = p.backoff(retry);
            prop_assert!(r >= ceiling / 2 && r <= ceiling);
        }
    }
}
