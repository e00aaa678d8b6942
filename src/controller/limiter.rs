//! At most N console URLs per minute per instance, counted across every session that targets it
//! (ECS allows 30 reconnects a minute). A sliding window: a slot frees 60 s after it was taken.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Limiter {
    per_minute: u32,
    taken: Mutex<HashMap<String, VecDeque<Timestamp>>>,
}

impl Limiter {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            taken: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_minute(&self) -> u32 {
        self.per_minute
    }

    /// Takes a slot for `region/instance` at `now`, or says when the next one frees.
    pub fn try_acquire(
        &self,
        region_id: &str,
        instance_id: &str,
        now: Timestamp,
    ) -> Result<(), Timestamp> {
        let key = format!("{region_id}/{instance_id}");
        let mut taken = self
            .taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget windows that have fully passed so the map does not grow with every instance ever seen.
        taken.retain(|_, slots| {
            slots
                .back()
                .is_some_and(|last| crate::session::expiry::add(*last, WINDOW) > now)
        });
        let slots = taken.entry(key).or_default();
        while slots
            .front()
            .is_some_and(|first| crate::session::expiry::add(*first, WINDOW) <= now)
        {
            slots.pop_front();
        }
        if slots.len() < self.per_minute as usize {
            slots.push_back(now);
            Ok(())
        } else {
            let oldest = slots.front().copied().unwrap_or(now);
            Err(crate::session::expiry::add(oldest, WINDOW))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn the_31st_url_in_a_minute_waits_for_the_first_slot_to_free() {
        let limiter = Limiter::new(30);
        for i in 0..30 {
            assert_eq!(limiter.try_acquire("cn-hangzhou", "i-a", at(i)), Ok(()));
        }
        assert_eq!(
            limiter.try_acquire("cn-hangzhou", "i-a", at(30)),
            Err(at(60))
        );
        assert_eq!(
            limiter.try_acquire("cn-hangzhou", "i-a", at(59)),
            Err(at(60))
        );
        assert_eq!(limiter.try_acquire("cn-hangzhou", "i-a", at(60)), Ok(()));
        assert_eq!(
            limiter.try_acquire("cn-hangzhou", "i-a", at(60)),
            Err(at(61))
        );
    }

    #[test]
    fn instances_and_regions_are_counted_apart() {
        let limiter = Limiter::new(1);
        assert_eq!(limiter.try_acquire("cn-hangzhou", "i-a", at(0)), Ok(()));
        assert_eq!(limiter.try_acquire("cn-hangzhou", "i-b", at(0)), Ok(()));
        assert_eq!(limiter.try_acquire("cn-shanghai", "i-a", at(0)), Ok(()));
        assert!(limiter.try_acquire("cn-hangzhou", "i-a", at(1)).is_err());
    }

    #[test]
    fn a_zero_limit_never_grants() {
        let limiter = Limiter::new(0);
        assert_eq!(
            limiter.try_acquire("cn-hangzhou", "i-a", at(0)),
            Err(at(60))
        );
    }

    #[test]
    fn idle_instances_are_forgotten() {
        let limiter = Limiter::new(5);
        limiter.try_acquire("cn-hangzhou", "i-a", at(0)).unwrap();
        limiter.try_acquire("cn-hangzhou", "i-b", at(100)).unwrap();
        assert_eq!(limiter.taken.lock().unwrap().len(), 1);
    }
}
