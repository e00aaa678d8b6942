//! ECS's account flow control: at most N requests per second per AccessKeyId and region, answered
//! `Throttling.User` beyond it. Real ECS keeps one quota per API; here every action shares one, so
//! a client that stays inside this quota stays inside ECS's per-API ones of the same size.
//!
//! A token bucket holding one second's worth of requests (GCRA form: one "theoretical arrival
//! time" per bucket, exact integer arithmetic on `Instant`s, so tests can give explicit times).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones (full again, so equal to a fresh bucket) are dropped.
const PRUNE_ABOVE: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct AccountQuota {
    per_second: Option<u32>,
    /// (AccessKeyId, RegionId) -> when the bucket is full again if nothing else arrives.
    full_at: HashMap<(String, String), Instant>,
}

impl AccountQuota {
    /// `None` (or 0) turns the quota off. Every bucket starts full again.
    pub(crate) fn set(&mut self, per_second: Option<u32>) {
        self.per_second = per_second.filter(|&n| n > 0);
        self.full_at.clear();
    }

    pub(crate) fn per_second(&self) -> Option<u32> {
        self.per_second
    }

    /// Refills every bucket; the setting stays.
    pub(crate) fn clear(&mut self) {
        self.full_at.clear();
    }

    /// Takes one request's token for this key and region at `now`; false means throttled. A
    /// refused request takes nothing.
    pub(crate) fn try_take(&mut self, access_key_id: &str, region_id: &str, now: Instant) -> bool {
        let Some(per_second) = self.per_second else {
            return true;
        };
        let interval = Duration::from_secs(1) / per_second;
        // A full bucket lets `per_second` requests through at once.
        let tolerance = interval * (per_second - 1);
        if self.full_at.len() > PRUNE_ABOVE {
            self.full_at.retain(|_, full_at| *full_at > now);
        }
        let key = (access_key_id.to_owned(), region_id.to_owned());
        let full_at = self.full_at.get(&key).copied().unwrap_or(now).max(now);
        if full_at.duration_since(now) > tolerance {
            return false;
        }
        self.full_at.insert(key, full_at + interval);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(per_second: u32) -> AccountQuota {
        let mut quota = AccountQuota::default();
        quota.set(Some(per_second));
        quota
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn off_by_default_and_when_set_to_zero() {
        let now = Instant::now();
        let mut quota = AccountQuota::default();
        assert!((0..10_000).all(|_| quota.try_take("ak", "cn-hangzhou", now)));
        quota.set(Some(0));
        assert_eq!(quota.per_second(), None);
        assert!(quota.try_take("ak", "cn-hangzhou", now));
    }

    #[test]
    fn a_full_bucket_lets_one_second_through_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut quota = quota(20);
        for n in 0..20 {
            assert!(quota.try_take("ak", "cn-hangzhou", t0), "request {n}");
        }
        assert!(!quota.try_take("ak", "cn-hangzhou", t0));
        assert!(!quota.try_take("ak", "cn-hangzhou", t0 + ms(49)));
        assert!(quota.try_take("ak", "cn-hangzhou", t0 + ms(50)));
        assert!(!quota.try_take("ak", "cn-hangzhou", t0 + ms(50)));
        assert!(quota.try_take("ak", "cn-hangzhou", t0 + ms(100)));
    }

    #[test]
    fn evenly_spaced_requests_at_the_quota_are_never_refused() {
        let t0 = Instant::now();
        let mut quota = quota(20);
        for n in 0..1000 {
            assert!(quota.try_take("ak", "cn-hangzhou", t0 + ms(50 * n)), "{n}");
        }
    }

    #[test]
    fn refused_requests_take_nothing() {
        let t0 = Instant::now();
        let mut quota = quota(2);
        assert!(quota.try_take("ak", "r", t0));
        assert!(quota.try_take("ak", "r", t0));
        for _ in 0..100 {
            assert!(!quota.try_take("ak", "r", t0 + ms(499)));
        }
        assert!(quota.try_take("ak", "r", t0 + ms(500)));
    }

    #[test]
    fn keys_and_regions_have_buckets_of_their_own() {
        let t0 = Instant::now();
        let mut quota = quota(1);
        assert!(quota.try_take("ak1", "cn-hangzhou", t0));
        assert!(!quota.try_take("ak1", "cn-hangzhou", t0));
        assert!(quota.try_take("ak1", "cn-shanghai", t0));
        assert!(quota.try_take("ak2", "cn-hangzhou", t0));
        assert!(quota.try_take("ak1", "cn-hangzhou", t0 + ms(1000)));
    }

    #[test]
    fn changing_or_clearing_refills_every_bucket() {
        let t0 = Instant::now();
        let mut quota = quota(1);
        assert!(quota.try_take("ak", "r", t0));
        quota.clear();
        assert!(quota.try_take("ak", "r", t0));
        quota.set(Some(1));
        assert!(quota.try_take("ak", "r", t0));
        assert!(!quota.try_take("ak", "r", t0));
    }

    #[test]
    fn idle_buckets_are_dropped_once_there_are_many() {
        let t0 = Instant::now();
        let mut quota = quota(5);
        for n in 0..=PRUNE_ABOVE {
            quota.try_take(&format!("ak{n}"), "r", t0);
        }
        quota.try_take("late", "r", t0 + ms(1000));
        assert_eq!(quota.full_at.len(), 1);
    }
}
