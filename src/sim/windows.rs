//! The two sliding windows ECS keeps per caller: nonces used by an AccessKeyId in the last 15
//! minutes, and successful reconnects per instance in the last minute.

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long a nonce stays used, and how far a `Timestamp` may be from the server clock.
pub const NONCE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The reconnect limit counts successful calls in a sliding window of this length.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Nonces seen per AccessKeyId within the window. Entries leave in arrival order, which is also
/// expiry order because the window is fixed.
#[derive(Debug)]
pub(crate) struct NonceCache {
    window: Duration,
    seen: HashSet<(String, String)>,
    order: VecDeque<(Instant, (String, String))>,
}

impl NonceCache {
    pub(crate) fn new(window: Duration) -> Self {
        NonceCache {
            window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records the nonce and says whether it was fresh.
    pub(crate) fn check_and_insert(
        &mut self,
        access_key_id: &str,
        nonce: &str,
        now: Instant,
    ) -> bool {
        self.expire(now);
        let key = (access_key_id.to_owned(), nonce.to_owned());
        if self.seen.contains(&key) {
            return false;
        }
        self.seen.insert(key.clone());
        self.order.push_back((now, key));
        true
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            if let Some((_, key)) = self.order.pop_front() {
                self.seen.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    pub(crate) fn clear(&mut self) {
        self.seen.clear();
        self.order.clear();
    }
}

/// Successful calls for one instance within the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    hits: VecDeque<Instant>,
}

impl RateWindow {
    /// Takes a slot if fewer than `limit` calls happened in the last `window`.
    pub(crate) fn try_acquire(&mut self, now: Instant, limit: u32, window: Duration) -> bool {
        while let Some(at) = self.hits.front() {
            if now.saturating_duration_since(*at) < window {
                break;
            }
            self.hits.pop_front();
        }
        if self.hits.len() >= limit as usize {
            return false;
        }
        self.hits.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_window_allows_limit_then_frees_slots_as_they_age() {
        let start = Instant::now();
        let mut window = RateWindow::default();
        for i in 0..30 {
            assert!(window.try_acquire(start + Duration::from_millis(i * 100), 30, RATE_WINDOW));
        }
        assert!(!window.try_acquire(start + Duration::from_secs(10), 30, RATE_WINDOW));
        // The first call was at +0 s; at exactly +60 s it has left the window.
        assert!(!window.try_acquire(start + Duration::from_millis(59_999), 30, RATE_WINDOW));
        assert!(window.try_acquire(start + RATE_WINDOW, 30, RATE_WINDOW));
        assert!(!window.try_acquire(start + RATE_WINDOW, 30, RATE_WINDOW));
    }

    #[test]
    fn rate_window_with_zero_limit_refuses_everything() {
        let mut window = RateWindow::default();
        assert!(!window.try_acquire(Instant::now(), 0, RATE_WINDOW));
    }

    #[test]
    fn nonce_is_single_use_per_key_until_it_expires() {
        let start = Instant::now();
        let mut cache = NonceCache::new(NONCE_WINDOW);
        assert!(cache.check_and_insert("ak1", "n1", start));
        assert!(!cache.check_and_insert("ak1", "n1", start + Duration::from_secs(1)));
        assert!(
            cache.check_and_insert("ak2", "n1", start),
            "per AccessKeyId"
        );
        assert!(!cache.check_and_insert(
            "ak1",
            "n1",
            start + NONCE_WINDOW - Duration::from_millis(1)
        ));
        assert!(cache.check_and_insert("ak1", "n1", start + NONCE_WINDOW));
    }

    #[test]
    fn nonce_cache_forgets_expired_entries() {
        let start = Instant::now();
        let mut cache = NonceCache::new(Duration::from_secs(10));
        for i in 0..100 {
            cache.check_and_insert("ak", &i.to_string(), start);
        }
        assert_eq!(cache.len(), 100);
        cache.check_and_insert("ak", "late", start + Duration::from_secs(10));
        assert_eq!(cache.len(), 1);
    }
}
